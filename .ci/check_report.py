#!/usr/bin/env python3
"""Checks that a screenshot of the HTML report shows charts: decodes the PNG (stdlib
only) and requires enough non-background pixels and the report's line colours."""
import struct, sys, zlib

def pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"unsupported PNG type {depth}/{ctype}"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows

w, h, bpp, rows = pixels(sys.argv[1])
ink = blue = red = 0
for r in rows[::2]:
    for x in range(0, w * bpp, bpp * 2):
        R, G, B = r[x], r[x + 1], r[x + 2]
        if R < 235 or G < 235 or B < 235:
            ink += 1
        if abs(R - 0x1f) < 20 and abs(G - 0x77) < 20 and abs(B - 0xb4) < 20:
            blue += 1
        if abs(R - 0xd6) < 20 and abs(G - 0x27) < 20 and abs(B - 0x28) < 20:
            red += 1
total = (h // 2) * (w // 2)
print(f"{sys.argv[1]}: {w}x{h}, {100 * ink / total:.1f}% ink, {blue} blue and {red} red chart pixels (sampled)")
assert ink / total > 0.03, "the page looks empty"
assert blue > 200 and red > 100, "the charts' lines are missing"

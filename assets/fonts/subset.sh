#!/usr/bin/env bash
# Rebuilds the three bundled font subsets (see PROVENANCE.md) on Debian:
#   apt-get install fonts-dejavu-core && apt-get download fonts-droid-fallback
#   pip install fonttools
set -euo pipefail
cd "$(dirname "$0")"
deb=$(ls fonts-droid-fallback_*.deb)
tmp=$(mktemp -d); dpkg-deb -x "$deb" "$tmp"
# Every character GB2312 encodes: 6,763 hanzi plus its punctuation, kana and symbols.
python3 - > "$tmp/gb2312.txt" <<'PY'
import sys
cs = set()
for hi in range(0xA1, 0xF8):
    for lo in range(0xA1, 0xFF):
        try: cs.add(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError: pass
sys.stdout.write("".join(sorted(cs)))
PY
latin="U+0020-007E,U+00A0-017F,U+0391-03C9,U+2010-2027,U+2030-205E,U+2190-21FF,U+2200-22FF,U+25A0-25FF"
pyftsubset /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf --unicodes="$latin" --no-hinting --output-file=DejaVuSans-subset.ttf
pyftsubset /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf --unicodes="$latin" --no-hinting --output-file=DejaVuSans-Bold-subset.ttf
pyftsubset "$tmp/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf" --text-file="$tmp/gb2312.txt" \
  --no-hinting --desubroutinize --output-file=DroidSansFallback-gb2312.ttf
gzip -9 -n -f DejaVuSans-subset.ttf DejaVuSans-Bold-subset.ttf DroidSansFallback-gb2312.ttf
rm -rf "$tmp"

//! `Chunks`: a request's token-bearing chunks — when each arrived (nanoseconds)
//! and how many output tokens it carried — packed as variable-length deltas.
//!
//! A finished request is kept for the whole run, and most of what it holds is
//! this list: as two plain lists it costs 12 bytes a chunk; packed, a chunk 1–100 ms
//! after the previous one carrying one token costs 4 bytes (5 with more tokens),
//! exactly (every nanosecond is kept). Serialized (shard files) it is still the two
//! lists `chunk_ns` and `chunk_tokens`.

use serde::{Deserialize, Serialize};

/// A request's chunk arrival times and token counts, packed. Build it with
/// [`Chunks::from_lists`] or [`Chunks::push`]; read it with [`Chunks::iter`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ChunkLists", into = "ChunkLists")]
pub struct Chunks {
    /// Arrival of the first chunk (0 when empty).
    first_ns: u64,
    /// Arrival of the last chunk (0 when empty).
    last_ns: u64,
    /// Number of chunks.
    len: u32,
    /// Per chunk, one LEB128 varint of `zigzag(gap) << 1 | (tokens != 1)`, then the
    /// token count as a varint when the flag is set. The first gap is from `first_ns`.
    bytes: Vec<u8>,
}

/// The serialized form: the two lists, as records have always been written.
#[derive(Serialize, Deserialize)]
struct ChunkLists {
    #[serde(default)]
    chunk_ns: Vec<u64>,
    #[serde(default)]
    chunk_tokens: Vec<u32>,
}

impl From<ChunkLists> for Chunks {
    fn from(l: ChunkLists) -> Chunks {
        Chunks::from_lists(&l.chunk_ns, &l.chunk_tokens)
    }
}

impl From<Chunks> for ChunkLists {
    fn from(c: Chunks) -> ChunkLists {
        ChunkLists {
            chunk_ns: c.times().collect(),
            chunk_tokens: c.tokens().collect(),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one varint; in 64-bit arithmetic up to 63 bits (every gap below ~73
/// years), in 128-bit beyond.
#[inline(always)]
fn get_varint(bytes: &[u8], at: &mut usize) -> u128 {
    let (mut v, mut shift) = (0u64, 0);
    while shift < 63 {
        let b = bytes[*at];
        *at += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v as u128;
        }
        shift += 7;
    }
    let mut v = v as u128;
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= ((b & 0x7f) as u128) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

impl Chunks {
    /// Packs `ns[i]` (arrival) with `tokens[i]`; a missing count is stored as 0.
    pub fn from_lists(ns: &[u64], tokens: &[u32]) -> Chunks {
        let mut c = Chunks::default();
        c.bytes.reserve(ns.len() * 4);
        for (i, &t) in ns.iter().enumerate() {
            c.push(t, tokens.get(i).copied().unwrap_or(0));
        }
        c.bytes.shrink_to_fit();
        c
    }

    /// Appends a chunk that arrived at `ns` with `tokens` output tokens.
    pub fn push(&mut self, ns: u64, tokens: u32) {
        let prev = if self.len == 0 {
            self.first_ns = ns;
            ns
        } else {
            self.last_ns
        };
        let gap = ns.wrapping_sub(prev) as i64;
        let zigzag = ((gap << 1) ^ (gap >> 63)) as u64;
        put_varint(
            &mut self.bytes,
            (zigzag as u128) << 1 | (tokens != 1) as u128,
        );
        if tokens != 1 {
            put_varint(&mut self.bytes, tokens as u128);
        }
        self.last_ns = ns;
        self.len += 1;
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no chunks.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first chunk's arrival.
    pub fn first(&self) -> Option<u64> {
        (self.len > 0).then_some(self.first_ns)
    }

    /// The last chunk's arrival.
    pub fn last(&self) -> Option<u64> {
        (self.len > 0).then_some(self.last_ns)
    }

    /// Each chunk's `(arrival ns, tokens)`, in order.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter {
            bytes: &self.bytes,
            at: 0,
            prev: self.first_ns,
        }
    }

    /// Each chunk's arrival, in order.
    pub fn times(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|c| c.0)
    }

    /// Each chunk's token count, in order.
    pub fn tokens(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter().map(|c| c.1)
    }

    /// The same chunks with every arrival passed through `f` (shard merging moves
    /// each shard's times onto one timeline).
    pub fn map_times(&self, f: impl Fn(u64) -> u64) -> Chunks {
        let mut out = Chunks::default();
        self.iter().for_each(|(t, n)| out.push(f(t), n));
        out.bytes.shrink_to_fit();
        out
    }

    /// Bytes held on the heap (for memory accounting and tests).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Iterator over [`Chunks`]: `(arrival ns, tokens)`.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    bytes: &'a [u8],
    at: usize,
    prev: u64,
}

impl Iterator for ChunkIter<'_> {
    type Item = (u64, u32);

    #[inline]
    fn next(&mut self) -> Option<(u64, u32)> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let v = get_varint(self.bytes, &mut self.at);
        let zigzag = (v >> 1) as u64;
        let gap = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        let tokens = if v & 1 == 1 {
            get_varint(self.bytes, &mut self.at) as u32
        } else {
            1
        };
        self.prev = self.prev.wrapping_add(gap as u64);
        Some((self.prev, tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_exactly() {
        let cases: Vec<(Vec<u64>, Vec<u32>)> = vec![
            (vec![], vec![]),
            (vec![5], vec![1]),
            (vec![7], vec![0]),
            (
                vec![
                    100,
                    20_000_100,
                    20_000_100,
                    45_000_000,
                    44_999_999,
                    u64::MAX,
                    0,
                ],
                vec![1, 4, 0, 1, 70_000, u32::MAX, 1],
            ),
        ];
        for (ns, tok) in cases {
            let c = Chunks::from_lists(&ns, &tok);
            assert_eq!(c.len(), ns.len());
            assert_eq!(c.times().collect::<Vec<_>>(), ns);
            assert_eq!(c.tokens().collect::<Vec<_>>(), tok);
            assert_eq!(c.first(), ns.first().copied());
            assert_eq!(c.last(), ns.last().copied());
            let json = serde_json::to_string(&c).unwrap();
            let back: Chunks = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
        }
        // Missing counts are 0; 20 ms gaps of one token take 4 bytes each.
        let c = Chunks::from_lists(&[1, 2], &[3]);
        assert_eq!(c.tokens().collect::<Vec<_>>(), vec![3, 0]);
        let ns: Vec<u64> = (0..128).map(|i| 1_000_000_000 + i * 20_000_000).collect();
        let c = Chunks::from_lists(&ns, &vec![1; 128]);
        assert_eq!(c.heap_bytes(), 1 + 127 * 4);
        assert_eq!(c.map_times(|t| t - 1).times().next(), Some(999_999_999));
    }

    #[test]
    fn serialized_as_the_two_lists() {
        let c = Chunks::from_lists(&[10, 30], &[1, 2]);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"chunk_ns": [10, 30], "chunk_tokens": [1, 2]})
        );
    }
}

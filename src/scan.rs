//! Byte scans on the parser's hot path: how much of an event's data is
//! ASCII, before its UTF-8 check looks at multi-byte characters.
//!
//! Event data is mostly ASCII (JSON). On x86_64 the scan reads 64 bytes per
//! step with SSE2 (part of every x86_64 CPU, so no feature detection): four
//! loads, three ORs and one `movemask`. The portable version ORs eight
//! words per step. Under callgrind the SSE2 scan took the UTF-8 check of the
//! parser bench's `dashboard` corpus (about 1 KiB of JSON per event) from
//! 0.47 to about 0.1 instructions per byte (`scripts/callgrind.py`).

/// The length of the ASCII prefix of `bytes`: the index of its first byte
/// of 0x80 or above, or its length when there is none.
#[inline]
pub(crate) fn ascii_prefix(bytes: &[u8]) -> usize {
    let len = bytes.len();
    let mut at = blocks(bytes);
    // What is left (at most 63 bytes; more when a block had a high byte):
    // 16 bytes at a time, then the last 16 read again overlapping the ones
    // before them (all ASCII up to `at`, so the first high bit found there
    // is the first of the slice).
    while at + 16 <= len {
        if let Some(i) = high_bit(&bytes[at..at + 16]) {
            return at + i;
        }
        at += 16;
    }
    if at == len {
        return len;
    }
    if len >= 16 {
        return match high_bit(&bytes[len - 16..]) {
            Some(i) => len - 16 + i,
            None => len,
        };
    }
    bytes[at..]
        .iter()
        .position(|&b| b >= 0x80)
        .map_or(len, |i| at + i)
}

/// How many leading 64-byte blocks of `bytes` are all ASCII, in bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn blocks(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128};
    let mut at = 0;
    while at + 64 <= bytes.len() {
        // SAFETY: the four 16-byte loads read `bytes[at..at + 64]`, inside
        // the slice (`at + 64 <= len`); `loadu` has no alignment
        // requirement; SSE2 is in the x86_64 baseline, so the intrinsics are
        // available on every CPU this code can run on.
        let high = unsafe {
            let p = bytes.as_ptr().add(at).cast::<__m128i>();
            let ab = _mm_or_si128(_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)));
            let cd = _mm_or_si128(_mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3)));
            _mm_movemask_epi8(_mm_or_si128(ab, cd))
        };
        if high != 0 {
            break;
        }
        at += 64;
    }
    at
}

/// How many leading 64-byte blocks of `bytes` are all ASCII, in bytes.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn blocks(bytes: &[u8]) -> usize {
    let mut at = 0;
    for block in bytes.chunks_exact(64) {
        let mut acc = 0u64;
        for word in block.chunks_exact(8) {
            acc |= u64::from_le_bytes(word.try_into().expect("8 bytes"));
        }
        if acc & u64::from_le_bytes([0x80; 8]) != 0 {
            break;
        }
        at += 64;
    }
    at
}

/// The index of the first byte of 0x80 or above in a 16-byte chunk.
#[inline(always)]
fn high_bit(chunk: &[u8]) -> Option<usize> {
    let word = u128::from_le_bytes(chunk.try_into().expect("16 bytes"));
    let high = word & u128::from_le_bytes([0x80; 16]);
    // Little-endian: the lowest set bit is the first byte.
    (high != 0).then(|| (high.trailing_zeros() / 8) as usize)
}

#[cfg(test)]
mod tests {
    use super::ascii_prefix;

    #[test]
    fn agrees_with_a_byte_search_at_every_length_and_position() {
        for len in 0..=200 {
            let mut bytes = vec![b'a'; len];
            assert_eq!(ascii_prefix(&bytes), len);
            for at in 0..len {
                for high in [0x80, 0xC3, 0xFF] {
                    bytes[at] = high;
                    // A second high byte later must not win.
                    if at + 5 < len {
                        bytes[at + 5] = 0xE2;
                    }
                    assert_eq!(ascii_prefix(&bytes), at, "len {len}, high byte at {at}");
                    bytes.iter_mut().for_each(|b| *b = b'a');
                }
            }
        }
    }

    #[test]
    fn works_on_unaligned_slices() {
        let bytes: Vec<u8> = (0..300).map(|i| if i == 257 { 0x90 } else { b'x' }).collect();
        for start in 0..20 {
            assert_eq!(ascii_prefix(&bytes[start..]), 257 - start, "start {start}");
        }
    }
}

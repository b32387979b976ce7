//! Byte scans on the parser's hot path: where a line ends (and whether it
//! is ASCII, found in the same pass), and how much of an event's data is
//! ASCII, before its UTF-8 check looks at multi-byte characters.
//!
//! Event data is mostly ASCII (JSON). On x86_64 the ASCII scan reads 64
//! bytes per step with SSE2 (part of every x86_64 CPU, so no feature
//! detection): four loads, three ORs and one `movemask`; the portable
//! version ORs eight words per step. Under callgrind it took the UTF-8 check
//! of the parser bench's `dashboard` corpus from 0.35 to 0.27 instructions
//! per byte; the AVX2 line-end pass (which makes the check unneeded for an
//! ASCII line) took `openai / 16k` from 2.00 to 1.81 (`scripts/callgrind.py`).

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
///
/// Long inputs (the data of a long line, whose line-end search did not
/// look at its bytes' high bits) go 128 bytes a step with AVX2 where the
/// CPU has it: under callgrind that took the check from about 0.19 to 0.1
/// instructions per byte (`line_8m`).
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn blocks(bytes: &[u8]) -> usize {
    if bytes.len() >= 512 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above), the one feature
        // `blocks_avx2` is compiled for.
        let at = unsafe { blocks_avx2(bytes) };
        // The rest, or the 128 bytes with a high byte: 64 at a time.
        return at + blocks_sse2(&bytes[at..]);
    }
    blocks_sse2(bytes)
}

/// How many leading 128-byte blocks of `bytes` are all ASCII, in bytes.
///
/// # Safety
///
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn blocks_avx2(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256};
    let mut at = 0;
    while at + 128 <= bytes.len() {
        // SAFETY: the four 32-byte loads read `bytes[at..at + 128]`, inside
        // the slice (`at + 128 <= len`); `loadu` has no alignment
        // requirement.
        let high = unsafe {
            let p = bytes.as_ptr().add(at).cast::<__m256i>();
            let ab = _mm256_or_si256(_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)));
            let cd = _mm256_or_si256(_mm256_loadu_si256(p.add(2)), _mm256_loadu_si256(p.add(3)));
            _mm256_movemask_epi8(_mm256_or_si256(ab, cd))
        };
        if high != 0 {
            break;
        }
        at += 128;
    }
    at
}

/// How many leading 64-byte blocks of `bytes` are all ASCII, in bytes,
/// with SSE2.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn blocks_sse2(bytes: &[u8]) -> usize {
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

/// Where a line ends: the index of the first CR or LF of the input, and
/// whether every byte before it is ASCII (false when unknown: the UTF-8
/// check then runs as usual).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Eol {
    pub(crate) at: usize,
    pub(crate) ascii: bool,
}

/// The first CR or LF of `bytes`, with whether the line before it is ASCII;
/// when there is none, `Err` with whether all of `bytes` is ASCII (false
/// when unknown), for a line that continues in the next chunk.
///
/// Inputs of up to 16 bytes (every chunk of a trickled body) are searched a
/// word at a time inline, their ASCII-ness left unknown; longer ones in one
/// vector pass that also ORs the bytes for their high bits, so the data of
/// a line found ASCII needs no UTF-8 check later (on x86_64 with AVX2; see
/// [`find_eol_long`]). A line still unended after [`COMBINED_UP_TO`] bytes
/// goes on with `memchr2`: past that, the data's own ASCII scan costs less
/// than keeping the OR going.
#[inline]
pub(crate) fn find_eol(bytes: &[u8]) -> Result<Eol, bool> {
    if bytes.len() > 16 {
        return find_eol_long(bytes);
    }
    match find_eol_short(bytes) {
        Some(at) => Ok(Eol { at, ascii: false }),
        None => Err(false),
    }
}

/// How far the combined line-end and ASCII pass goes before handing a long
/// line to `memchr2`.
const COMBINED_UP_TO: usize = 2048;

/// [`find_eol`] for up to 16 bytes: two overlapping words, or a byte loop
/// under 8 bytes.
#[inline(always)]
fn find_eol_short(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const LF: u64 = ONES * b'\n' as u64;
    const CR: u64 = ONES * b'\r' as u64;
    /// A high bit set in the first byte of `word` (read little-endian) that
    /// is CR or LF; bits above the first match may be wrong, and are not
    /// used.
    #[inline]
    fn eol_bits(word: u64) -> u64 {
        let lf = word ^ LF;
        let cr = word ^ CR;
        ((lf.wrapping_sub(ONES) & !lf) | (cr.wrapping_sub(ONES) & !cr)) & HIGH
    }
    let len = bytes.len();
    debug_assert!(len <= 16);
    if len >= 8 {
        let word = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let bits = eol_bits(word);
        if bits != 0 {
            return Some((bits.trailing_zeros() / 8) as usize);
        }
        // The last 8 bytes (overlapping the first 8 when `len` < 16).
        let word = u64::from_le_bytes(bytes[len - 8..].try_into().expect("8 bytes"));
        let bits = eol_bits(word);
        if bits != 0 {
            return Some(len - 8 + (bits.trailing_zeros() / 8) as usize);
        }
        // The two words cover all of `bytes` (`len` <= 16).
        return None;
    }
    bytes.iter().position(|&b| matches!(b, b'\n' | b'\r'))
}

/// [`find_eol`] for more than 16 bytes, on x86_64: the combined pass with
/// AVX2 where the CPU has it (detected once by the standard library, a
/// load and a test per call afterwards), `memchr2` otherwise.
///
/// Only AVX2 pays: under callgrind an SSE2 version of the combined pass (16
/// bytes a compare) cost 0.47 instructions per byte, more than `memchr2`'s
/// AVX2 search plus the separate ASCII scan of the data (about 0.39).
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn find_eol_long(bytes: &[u8]) -> Result<Eol, bool> {
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above), the one feature
        // `find_eol_avx2` is compiled for.
        return unsafe { find_eol_avx2(bytes) };
    }
    memchr::memchr2(b'\n', b'\r', bytes)
        .map(|at| Eol { at, ascii: false })
        .ok_or(false)
}

/// The combined pass: 64 bytes a step, each 32-byte half compared with LF
/// and CR, and the bytes ORed together for their high bits.
///
/// # Safety
///
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn find_eol_avx2(bytes: &[u8]) -> Result<Eol, bool> {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8,
        _mm256_or_si256, _mm256_setr_epi8, _mm256_setzero_si256, _mm256_shuffle_epi8,
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let len = bytes.len();
    debug_assert!(len > 16);
    let combined = len.min(COMBINED_UP_TO);
    let p = bytes.as_ptr();
    // CR and LF in one compare: `vpshufb` looks each byte's low four bits
    // up in this table (in each 128-bit lane), and gives 0 for a byte with
    // its high bit set. Only LF (0x0A) and CR (0x0D) find themselves there:
    // every other entry is 0xFF, which no byte below 0x80 equals, and a
    // byte of 0x80 or above (looked up as 0) is not 0.
    const X: i8 = -1;
    #[rustfmt::skip]
    let table = _mm256_setr_epi8(
        X, X, X, X, X, X, X, X, X, X, b'\n' as i8, X, X, b'\r' as i8, X, X,
        X, X, X, X, X, X, X, X, X, X, b'\n' as i8, X, X, b'\r' as i8, X, X,
    );
    let eq = |v: __m256i| _mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, v), v);
    let ends = |v: __m256i| _mm256_movemask_epi8(eq(v)) as u32;
    // SAFETY (every load below): it reads 32 (or 16) bytes at `p + k` with
    // `k + 32 <= len` (or `k + 16 <= len`), each checked by its loop or
    // branch, so inside `bytes`; `loadu` has no alignment requirement.
    let load = |at: usize| _mm256_loadu_si256(p.add(at).cast::<__m256i>());
    // The line end at bit `i` of `v`'s compare, at offset `base`; `high`:
    // the high bits of everything before `base`.
    let found = |v: __m256i, i: u32, base: usize, high: __m256i| {
        let before = _mm256_movemask_epi8(v) as u32 & ((1u32 << i) - 1);
        Eol {
            at: base + i as usize,
            ascii: before == 0 && _mm256_movemask_epi8(high) == 0,
        }
    };
    let mut high = _mm256_setzero_si256();
    let mut at = 0;
    while at + 64 <= combined {
        let (a, b) = (load(at), load(at + 32));
        // One test for both halves; which half, after.
        if _mm256_movemask_epi8(_mm256_or_si256(eq(a), eq(b))) != 0 {
            let ea = ends(a);
            if ea != 0 {
                return Ok(found(a, ea.trailing_zeros(), at, high));
            }
            return Ok(found(
                b,
                ends(b).trailing_zeros(),
                at + 32,
                _mm256_or_si256(high, a),
            ));
        }
        high = _mm256_or_si256(high, _mm256_or_si256(a, b));
        at += 64;
    }
    while at + 32 <= combined {
        let v = load(at);
        let e = ends(v);
        if e != 0 {
            return Ok(found(v, e.trailing_zeros(), at, high));
        }
        high = _mm256_or_si256(high, v);
        at += 32;
    }
    if combined < len {
        // A long line: the rest by `memchr2`, its ASCII-ness unknown.
        return memchr::memchr2(b'\n', b'\r', &bytes[at..])
            .map(|i| Eol {
                at: at + i,
                ascii: false,
            })
            .ok_or(false);
    }
    if at == len {
        return Err(_mm256_movemask_epi8(high) == 0);
    }
    if len >= 32 {
        // The last 32 bytes, overlapping some already searched (none of
        // which is a line end, so the first end found is the first).
        let base = len - 32;
        let v = load(base);
        let e = ends(v);
        if e != 0 {
            return Ok(found(v, e.trailing_zeros(), base, high));
        }
        return Err(_mm256_movemask_epi8(_mm256_or_si256(high, v)) == 0);
    }
    // 17 to 31 bytes: two overlapping 16-byte halves.
    let lf = _mm_set1_epi8(b'\n' as i8);
    let cr = _mm_set1_epi8(b'\r' as i8);
    let ends = |v: __m128i| {
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr))) as u32
    };
    let first = _mm_loadu_si128(p.cast::<__m128i>());
    let e = ends(first);
    let high_first = _mm_movemask_epi8(first) as u32;
    if e != 0 {
        let i = e.trailing_zeros();
        let ascii = high_first & ((1u32 << i) - 1) == 0;
        return Ok(Eol {
            at: i as usize,
            ascii,
        });
    }
    let base = len - 16;
    let last = _mm_loadu_si128(p.add(base).cast::<__m128i>());
    let e = ends(last);
    let high_last = _mm_movemask_epi8(last) as u32;
    if e == 0 {
        return Err(high_first == 0 && high_last == 0);
    }
    let i = e.trailing_zeros();
    Ok(Eol {
        at: base + i as usize,
        ascii: high_last & ((1u32 << i) - 1) == 0 && high_first == 0,
    })
}

/// [`find_eol`] for more than 16 bytes, elsewhere: `memchr2`.
#[cfg(not(target_arch = "x86_64"))]
fn find_eol_long(bytes: &[u8]) -> Result<Eol, bool> {
    memchr::memchr2(b'\n', b'\r', bytes)
        .map(|at| Eol { at, ascii: false })
        .ok_or(false)
}

#[cfg(test)]
mod tests {
    use super::{ascii_prefix, find_eol, COMBINED_UP_TO};

    #[test]
    fn line_ends_and_their_ascii_flag_agree_with_a_byte_search() {
        // Lengths around the 16-byte and 64-byte steps and the switch to
        // `memchr2`; a line end and a high byte before it, at it, or after
        // it (the flag must cover exactly the bytes before the end).
        let lens = (0..=200).chain([COMBINED_UP_TO - 1, COMBINED_UP_TO, COMBINED_UP_TO + 70]);
        for len in lens {
            let step = if len > 200 { 37 } else { 1 };
            for at in (0..=len).step_by(step) {
                for eol in [b'\n', b'\r'] {
                    for high in [None, Some(0), Some(at / 2), Some(at + 1), Some(at + 20)] {
                        let mut bytes = vec![b'x'; len];
                        if at < len {
                            bytes[at] = eol;
                        }
                        if let Some(h) = high.filter(|&h| h < len && h != at) {
                            bytes[h] = 0xC3;
                        }
                        let want = bytes.iter().position(|&b| b == b'\n' || b == b'\r');
                        let got = find_eol(&bytes);
                        if let Err(ascii) = got {
                            assert!(!ascii || bytes.is_ascii(), "len {len}: said ASCII");
                            if len > 16 && len <= COMBINED_UP_TO {
                                assert_eq!(ascii, bytes.is_ascii(), "len {len} high {high:?}");
                            }
                        }
                        let got = got.ok();
                        assert_eq!(got.map(|e| e.at), want, "len {len} at {at} high {high:?}");
                        if let (Some(got), Some(want)) = (got, want) {
                            let truth = bytes[..want].is_ascii();
                            assert!(
                                !got.ascii || truth,
                                "len {len} at {at} high {high:?}: said ASCII"
                            );
                            if len > 16 && want < COMBINED_UP_TO - 64 {
                                assert_eq!(got.ascii, truth, "len {len} at {at} high {high:?}");
                            }
                        }
                    }
                }
            }
        }
    }

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
    fn long_inputs_agree_with_a_byte_search() {
        // The 128-byte steps of the AVX2 pass, then 64, 16 and the tail.
        for len in [511, 512, 513, 640, 700, 1000, 4096 + 77] {
            let mut bytes = vec![b'a'; len];
            assert_eq!(ascii_prefix(&bytes), len);
            for at in (0..len).step_by(7).chain(len.saturating_sub(130)..len) {
                bytes[at] = 0xC3;
                if at + 200 < len {
                    bytes[at + 200] = 0xE2;
                }
                assert_eq!(ascii_prefix(&bytes), at, "len {len}, high byte at {at}");
                bytes.iter_mut().for_each(|b| *b = b'a');
            }
        }
    }

    #[test]
    fn works_on_unaligned_slices() {
        let bytes: Vec<u8> = (0..300)
            .map(|i| if i == 257 { 0x90 } else { b'x' })
            .collect();
        for start in 0..20 {
            assert_eq!(ascii_prefix(&bytes[start..]), 257 - start, "start {start}");
        }
    }
}

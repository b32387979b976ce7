//! Fuzz target: the parser under arbitrary input and arbitrary chunking.
//!
//! The first bytes choose the size limit and how the rest is cut into
//! chunks. Checked on every input:
//! - chunked parsing gives exactly the frames (events, comments, `retry:`
//!   values) and the final last event ID of one-chunk parsing, and fails
//!   (size limit) at the same frame;
//! - without an error, the events, ids and retry values equal those of a
//!   naive reference parser written straight from the spec;
//! - memory stays bounded by the limit: the bytes the codec holds
//!   (counted by a global allocator) never exceed a small multiple of it;
//! - nothing panics.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ssekit::{Frame, SseCodec};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// counts the sizes it was given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A frame reduced to what must agree between two parses, hashed so that
/// comparing costs no allocation during the measured parse.
fn hash_frame(h: &mut u64, frame: &Frame) {
    let mut mix = |bytes: &[u8]| {
        for &b in bytes {
            *h = (*h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        *h = (*h ^ 0xff).wrapping_mul(0x100_0000_01b3);
    };
    match frame {
        Frame::Message(m) => {
            mix(b"M");
            mix(m.event().as_bytes());
            mix(m.data().as_bytes());
            mix(m.id().as_bytes());
        }
        Frame::Comment(c) => {
            mix(b"C");
            mix(c.as_bytes());
        }
        Frame::Retry(d) => {
            mix(b"R");
            mix(&d.as_millis().to_le_bytes());
        }
        _ => mix(b"?"),
    }
}

struct Parse {
    /// One hash per frame, in order.
    frames: Vec<u64>,
    failed: bool,
    last_event_id: String,
}

/// Parses `input` cut at `cuts` (chunk sizes, cycled), checking memory.
fn parse(input: &[u8], limit: usize, cuts: &[usize]) -> Parse {
    let mut frames = Vec::with_capacity(input.len() / 2 + 1);
    let mut codec = SseCodec::new().with_max_event_size(limit);
    let baseline = LIVE.load(Ordering::Relaxed);
    let mut rest = input;
    let mut failed = false;
    let mut i = 0;
    'feed: while !rest.is_empty() {
        let n = cuts[i % cuts.len()].min(rest.len());
        i += 1;
        codec.feed(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
        loop {
            match codec.next_frame() {
                Ok(Some(frame)) => {
                    let mut h = 0xcbf2_9ce4_8422_2325;
                    hash_frame(&mut h, &frame);
                    frames.push(h);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.is_too_large(), "{e:?}");
                    failed = true;
                    break 'feed;
                }
            }
        }
        // `frames` was sized up front: what grows is the codec.
        let held = LIVE.load(Ordering::Relaxed) - baseline;
        let bound = 6 * limit as isize + 64 * 1024;
        assert!(held <= bound, "codec holds {held} bytes with a limit of {limit}");
    }
    Parse {
        frames,
        failed,
        last_event_id: codec.last_event_id().to_owned(),
    }
}

type Ev = (String, String, String);

/// The naive reference: the whole body decoded, split into lines, fields
/// interpreted one by one (WHATWG HTML §9.2.6).
fn reference(input: &[u8]) -> (Vec<Ev>, String, Option<Duration>) {
    let body = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = String::from_utf8_lossy(body);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            lines.push(std::mem::take(&mut line));
        } else {
            line.push(c);
        }
    }
    let (mut events, mut data, mut ty) = (Vec::new(), String::new(), String::new());
    let (mut id, mut last_id, mut retry) = (None::<String>, String::new(), None);
    for line in &lines {
        if line.is_empty() {
            if let Some(new) = id.take() {
                last_id = new;
            }
            if data.is_empty() {
                ty.clear();
                continue;
            }
            data.pop(); // the trailing LF
            let name = if ty.is_empty() { "message".to_owned() } else { std::mem::take(&mut ty) };
            events.push((name, std::mem::take(&mut data), last_id.clone()));
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match name {
            "event" => ty = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let ms = value.bytes().fold(0u64, |a, d| {
                    a.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                retry = Some(Duration::from_millis(ms));
            }
            _ => {}
        }
    }
    (events, last_id, retry)
}

fuzz_target!(|input: &[u8]| {
    let Some((&head, rest)) = input.split_first() else {
        return;
    };
    let Some((cut_bytes, body)) = rest.split_at_checked(usize::from(head % 8)) else {
        return;
    };
    // Small limits so the size checks are reached; 0 in the low bits means
    // "no practical limit" so that the reference comparison runs often.
    let limit = match head >> 3 {
        0..=15 => 1 << 20,
        n => usize::from(n) * 8,
    };
    let cuts: Vec<usize> = if cut_bytes.is_empty() {
        vec![body.len().max(1)]
    } else {
        cut_bytes.iter().map(|&b| usize::from(b % 64) + 1).collect()
    };
    let whole = parse(body, limit, &[body.len().max(1)]);
    let chunked = parse(body, limit, &cuts);
    assert_eq!(whole.failed, chunked.failed, "the size limit depends on chunking");
    assert_eq!(whole.frames, chunked.frames, "frames depend on chunking");
    if !whole.failed {
        assert_eq!(whole.last_event_id, chunked.last_event_id);
        // Against the reference, through the public event API.
        let mut codec = SseCodec::new().with_max_event_size(limit);
        codec.feed(Bytes::copy_from_slice(body));
        let mut events = Vec::new();
        while let Some(ev) = codec.next_event().expect("no error in the first pass") {
            events.push((ev.event().to_owned(), ev.data().to_owned(), ev.id().to_owned()));
        }
        let (want, last_id, retry) = reference(body);
        assert_eq!(events, want, "events differ from the reference");
        assert_eq!(codec.last_event_id(), last_id, "last event ID differs");
        assert_eq!(codec.retry(), retry, "retry differs");
    }
});

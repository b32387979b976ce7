//! What the parser keeps allocated after one huge line, measured with a
//! counting allocator (this binary holds one test, so nothing else
//! allocates while it measures).
//!
//! A review found that after a 4 MiB `data:`, `event:` or `id:` line the
//! codec kept 4-8 MiB per field until the next reconnection: up to about
//! 3 × `max_event_size` per stream for the life of a connection.

use bytes::Bytes;
use ssekit::SseCodec;

#[path = "support/live_bytes.rs"]
mod live_bytes;
use live_bytes::live;

/// Feeds `input` in 16 KiB pieces (as a network delivers a long line) and
/// drops every event.
fn feed(codec: &mut SseCodec, input: &[u8]) -> usize {
    let mut events = 0;
    for piece in input.chunks(16 * 1024) {
        codec.feed(Bytes::copy_from_slice(piece));
        while let Some(ev) = codec.next_event().unwrap() {
            drop(ev);
            events += 1;
        }
    }
    events
}

#[test]
fn one_huge_line_leaves_no_huge_buffer_behind() {
    // 4 MiB, and 4 MiB less 100 bytes: the line buffer then grows to just
    // above the line, and the view of its few spare bytes that the parser
    // kept after handing the line out pinned the whole 4 MiB (issue 19).
    for huge in [4 * 1024 * 1024, 4 * 1024 * 1024 - 100] {
        huge_line(huge);
    }
}

fn huge_line(huge: usize) {
    let big = "x".repeat(huge);
    let mut codec = SseCodec::new();
    let lines = [
        format!("data: {big}\n\n"),
        format!("event: {big}\ndata: a\n\n"),
        format!("id: {big}\ndata: a\n\n"),
        format!("data: {big}\ndata: second line\n\n"),
        // Two data lines then ten small events, as the report had it.
        format!("data: {big}\ndata: end\n\n"),
    ];
    // Warm up with ordinary events so steady-state buffers exist.
    assert_eq!(feed(&mut codec, b"id: 1\nevent: tick\ndata: a\n\n"), 1);
    let baseline = live();
    for line in &lines {
        assert_eq!(feed(&mut codec, line.as_bytes()), 1);
        // Ordinary traffic afterwards, with a new id so the huge one is not
        // the last event ID any more (that one must be kept: it is sent back).
        assert_eq!(
            feed(
                &mut codec,
                b"id: 2\nevent: tick\ndata: b\n\nid: 3\ndata: c\n\n"
            ),
            2
        );
        let kept = live() - baseline;
        assert!(
            kept < 64 * 1024,
            "{kept} bytes still allocated after a {huge}-byte line ({})",
            &line[..10]
        );
    }
    drop(big);
    assert_eq!(codec.last_event_id(), "3");
}

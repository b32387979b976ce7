//! The start of a line that the input so far left unfinished, for the
//! parser in `codec.rs`.
//!
//! Most unfinished lines are short (an event cut between two reads): their
//! bytes are copied into one buffer. A long line arrives as whole chunks
//! with no line end in them; those are kept as they are (`Bytes`, no copy),
//! and the line is copied once, into a buffer of exactly its size, when its
//! end arrives. Growing one buffer by doubling instead copies each byte
//! about twice and faults in about twice the memory (the parser bench's
//! `line_8m` rows).
//!
//! Memory: a chunk is kept only when it is at least [`KEEP_CHUNK_FROM`]
//! bytes, so the list costs at most one entry per that many bytes of the
//! line, and every kept byte belongs to the line (a kept chunk is all line,
//! except the first, which may start with the end of earlier lines).

use bytes::{Bytes, BytesMut};

/// Chunks of at least this many bytes that only continue the line are kept
/// as they are instead of being copied.
pub(crate) const KEEP_CHUNK_FROM: usize = 4096;

/// The start of an unfinished line: `chunks`, then `tail`.
#[derive(Default)]
pub(crate) struct PartialLine {
    /// Received chunks kept without a copy, in order; empty unless the
    /// line is long.
    chunks: Vec<Bytes>,
    /// The bytes in `chunks`.
    chunks_len: usize,
    /// The bytes after `chunks`, copied. Holds the whole line once it is
    /// [complete](Self::complete).
    tail: BytesMut,
}

impl PartialLine {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks_len == 0 && self.tail.is_empty()
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.chunks_len + self.tail.len()
    }

    /// The first byte of the line, if any.
    #[inline]
    pub(crate) fn first(&self) -> Option<u8> {
        match self.chunks.first() {
            Some(chunk) => chunk.first().copied(),
            None => self.tail.first().copied(),
        }
    }

    /// Appends bytes by copying them.
    #[inline]
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
    }

    /// Appends a received chunk of at least [`KEEP_CHUNK_FROM`] bytes (with
    /// no line end), kept as it is.
    #[cold]
    pub(crate) fn keep(&mut self, chunk: Bytes) {
        debug_assert!(chunk.len() >= KEEP_CHUNK_FROM);
        if !self.tail.is_empty() {
            // What was copied so far goes first. A big `tail` (grown by
            // many small chunks) goes with its whole allocation.
            let copied = if self.tail.capacity() > crate::codec::KEEP_BUFFER_UP_TO {
                std::mem::take(&mut self.tail)
            } else {
                self.tail.split()
            };
            self.chunks_len += copied.len();
            self.chunks.push(copied.freeze());
        }
        self.chunks_len += chunk.len();
        self.chunks.push(chunk);
    }

    /// Appends `end`, the last bytes of the line, and returns the whole line
    /// in one buffer: the same buffer when no chunk was kept, else one of
    /// exactly the line's size (the chunks are released).
    #[inline]
    pub(crate) fn complete(&mut self, end: &[u8]) -> &mut BytesMut {
        if self.chunks.is_empty() {
            self.tail.extend_from_slice(end);
        } else {
            self.join(end);
        }
        &mut self.tail
    }

    #[cold]
    fn join(&mut self, end: &[u8]) {
        let mut line = BytesMut::with_capacity(self.len() + end.len());
        for chunk in self.chunks.drain(..) {
            line.extend_from_slice(&chunk);
        }
        line.extend_from_slice(&self.tail);
        line.extend_from_slice(end);
        self.chunks_len = 0;
        // Of the chunk list, a long line's worth of entries is not kept.
        if self.chunks.capacity() > 64 {
            self.chunks = Vec::new();
        }
        // The old `tail` is dropped: its allocation is not worth keeping
        // next to a buffer of the line's size.
        self.tail = line;
    }

    /// The buffer holding a [completed](Self::complete) line.
    #[inline]
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.tail
    }
}

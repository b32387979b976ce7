//! Guides: the reference that does not belong to one item, one page per
//! topic. This module holds no code; every example in it is compiled and
//! run as a doc test.
//!
//! | guide | for |
//! |---|---|
//! | [`reconnection`] | the stream's semantics, every setting and its default, what each answer leads to |
//! | [`llm`] | LLM token streams: typed JSON chunks, end markers, POST requests |
//! | [`mcp`] | the SSE half of an MCP client |
//! | [`subscribers`] | one connection, many subscribers |
//! | [`proxies`] | forward proxies and buffering reverse proxies |
//! | [`testing`] | testing SSE servers, and clients against a scripted server |
//! | [`parser`] | the parser without HTTP or a runtime |
//! | [`cli`] | the `ssekit` command-line tool |
//!
//! Resuming a consumer where it stopped processing, across restarts, is
//! documented with its types in the [`checkpoint`](crate::checkpoint)
//! module.
//!
//! Measurements are on GitHub:
//! [BENCHMARKS.md](https://github.com/ssekit/ssekit/blob/main/BENCHMARKS.md)
//! (parser and end-to-end throughput, idle memory, against the other Rust
//! SSE clients) and
//! [RELIABILITY.md](https://github.com/ssekit/ssekit/blob/main/RELIABILITY.md)
//! (guarantees, network faults, soak, fuzzing).

// Each guide is a Markdown file beside this one: long prose and examples
// are easier to edit without a `//!` on every line. `include_str!` makes
// the file its module's docs, and so its examples doc tests.

pub mod reconnection {
    #![doc = include_str!("guide/reconnection.md")]
}

pub mod llm {
    #![doc = include_str!("guide/llm.md")]
}

pub mod mcp {
    #![doc = include_str!("guide/mcp.md")]
}

pub mod subscribers {
    #![doc = include_str!("guide/subscribers.md")]
}

pub mod proxies {
    #![doc = include_str!("guide/proxies.md")]
}

pub mod testing {
    #![doc = include_str!("guide/testing.md")]
}

pub mod parser {
    #![doc = include_str!("guide/parser.md")]
}

pub mod cli {
    #![doc = include_str!("guide/cli.md")]
}

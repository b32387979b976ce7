//! An async [Server-Sent Events] client that reconnects.
//!
//! - [`EventSource`]: a `Stream` over a streaming reqwest request that
//!   yields [`Event`]s, resends `Last-Event-ID`, honours `retry:` and
//!   `Retry-After`, reconnects with capped exponential backoff and jitter
//!   ([`RetryPolicy`]), and stops at an attempt limit with an [`Error`]
//!   that says why (status, headers and body of a refused request).
//! - [`Dispatcher`]: one connection, many subscribers by event type.
//! - [`SseCodec`]: the sans-IO parser on its own, a
//!   [`tokio_util::codec::Decoder`]; [`EventStream`] applies it to any byte
//!   stream or [`http_body::Body`].
//! - [`checkpoint`]: the last processed event ID kept across restarts
//!   ([`FileCheckpoints`], [`Checkpoint`]), to resume where a consumer
//!   stopped.
//! - [`Handle`]: close or restart a stream from another task, and watch
//!   what it is doing ([`Handle::status`], [`Handle::watch`]) for a health
//!   endpoint; with the `metrics` feature, counters and gauges per stream
//!   (see the `metrics` module).
//! - [`testing`]: deadlines and readable failures for tests of SSE servers.
//!
//! The [`guide`] holds the reference that does not belong to one item:
//! [reconnection](guide::reconnection) (every setting, what each answer
//! leads to), [LLM streams](guide::llm), [MCP clients](guide::mcp),
//! [subscribers](guide::subscribers), [proxies](guide::proxies),
//! [testing](guide::testing), the [parser](guide::parser) and the
//! [command-line tool](guide::cli).
//!
//! # Example
//!
//! ```no_run
//! use futures::StreamExt;
//! use ssekit::{Event, EventSource};
//!
//! # async fn run() -> Result<(), ssekit::Error> {
//! let mut es = EventSource::new("http://127.0.0.1:8080/events")?;
//! while let Some(event) = es.next().await {
//!     if let Event::Message(m) = event? {
//!         println!("{}: {}", m.event(), m.data());
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `rustls` | yes | TLS through reqwest's rustls backend |
//! | `http2` | yes | HTTP/2 through reqwest |
//! | `system-proxy` | yes | the operating system's proxy settings (macOS, Windows), besides `HTTP_PROXY` and friends |
//! | `native-tls` | no | TLS through the platform's library |
//! | `gzip`, `brotli`, `zstd`, `deflate` | yes | decoding compressed bodies as they stream |
//! | `metrics` | no | counters and gauges through the `metrics` facade: see the `metrics` module |
//! | `json` | no | [`MessageEvent::json`], `Json` streams, JSON request bodies |
//! | `mock` | no | `testing::MockServer`: a scripted, misbehaving SSE server for tests |
//! | `cli` | no | the `ssekit` command-line tool (includes `json` and `mock`) |
//!
//! # Runtime cost
//!
//! Each connection is driven by the task that polls its stream, with
//! reqwest's connection task beside it. Consume the stream in a spawned
//! task (`tokio::spawn`) or on a current-thread runtime: consumed directly
//! in `block_on` or the body of `#[tokio::main]` on the multi-thread
//! runtime, every HTTP chunk (one per token of an LLM stream) crosses
//! threads to wake the main thread, which measured here at 12 to 24 µs of
//! CPU per event instead of about 1 µs (see
//! [BENCHMARKS.md](https://github.com/ssekit/ssekit/blob/main/BENCHMARKS.md#end-to-end)).
//!
//! [Server-Sent Events]: https://html.spec.whatwg.org/multipage/server-sent-events.html
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
pub mod checkpoint;
pub mod codec;
mod dispatch;
mod error;
mod event;
mod gate;
pub mod guide;
mod headers;
#[cfg(feature = "json")]
mod json;
mod line;
#[cfg(feature = "metrics")]
pub mod metrics;
mod policy;
mod pool;
mod proxy;
mod redact;
mod retry;
mod scan;
mod source;
mod status;
mod stream;
pub mod testing;
mod wake;
mod watchdog;

pub use builder::{
    Attempt, EventSourceBuilder, DEFAULT_IDLE_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT, SLOW_HEAD_WARNING,
};
pub use checkpoint::{
    Checkpoint, CheckpointStore, FileCheckpoints, MemoryCheckpoints, DEFAULT_FLUSH_EVERY,
    DEFAULT_FLUSH_INTERVAL,
};
pub use codec::{DecodeError, Frame, FrameCodec, SseCodec};
pub use dispatch::{
    Dispatcher, EventSubscription, Listener, Overflow, Subscription, SubscriptionError,
    DEFAULT_SUBSCRIBER_CAPACITY,
};
pub use error::{Error, ERROR_BODY_LIMIT};
pub use event::{Event, MessageEvent, Open, Reconnect};
pub use headers::add_sse_headers;
#[cfg(feature = "json")]
pub use json::{Json, JsonError, MaybeMessage, TypedError};
pub use policy::{is_transient_status, Decision, Failure, FailureKind, MAX_SERVER_DELAY};
pub use pool::{ClientPool, DEFAULT_STREAMS_PER_CLIENT};
pub use redact::{redact_url, strip_credential_headers};
pub use retry::{Backoff, RetryPolicy};
pub use source::{EventSource, Handle, ReadyState};
pub use status::{Status, StatusWatch, StreamState};
pub use stream::{BodyStream, EventStream};

/// The README's examples, compiled and run as doc tests.
#[cfg(all(doctest, feature = "json"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

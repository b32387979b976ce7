//! ssekit: an async Server-Sent Events client that reconnects.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod builder;
pub mod codec;
mod error;
mod event;
mod retry;
mod source;

pub use builder::{EventSourceBuilder, DEFAULT_IDLE_TIMEOUT};
pub use codec::{DecodeError, Frame, FrameCodec, SseCodec};
pub use error::{Error, ERROR_BODY_LIMIT};
pub use event::{Event, MessageEvent, Open, Reconnect};
pub use retry::{Backoff, RetryPolicy};
pub use source::{EventSource, Handle, ReadyState};

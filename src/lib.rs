//! ssekit: an async Server-Sent Events client that reconnects.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod codec;
mod event;

pub use codec::{DecodeError, Frame, FrameCodec, SseCodec};
pub use event::MessageEvent;

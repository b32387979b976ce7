//! ssekit: an async Server-Sent Events client that reconnects.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod builder;
pub mod codec;
mod dispatch;
mod error;
mod event;
#[cfg(feature = "json")]
mod json;
mod retry;
mod source;
mod stream;
pub mod testing;

pub use builder::{EventSourceBuilder, DEFAULT_IDLE_TIMEOUT};
pub use codec::{DecodeError, Frame, FrameCodec, SseCodec};
pub use dispatch::{
    Dispatcher, EventSubscription, Listener, Overflow, Subscription, SubscriptionError,
    DEFAULT_SUBSCRIBER_CAPACITY,
};
pub use error::{Error, ERROR_BODY_LIMIT};
pub use event::{Event, MessageEvent, Open, Reconnect};
#[cfg(feature = "json")]
pub use json::{Json, JsonError, MaybeMessage, TypedError};
pub use retry::{Backoff, RetryPolicy};
pub use source::{EventSource, Handle, ReadyState};
pub use stream::{BodyStream, EventStream};

//! Per-type subscribers over one connection.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{ready, Context, Poll, Waker};

use futures_core::{FusedStream, Stream};

use crate::error::Kind;
use crate::wake;
use crate::{Error, Event, EventSource, MessageEvent};

/// The default number of events a [`Subscription`] buffers: 256.
pub const DEFAULT_SUBSCRIBER_CAPACITY: usize = 256;

/// What a [`Dispatcher`] does when a subscriber's buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Stop reading the connection until the slow subscriber makes room.
    /// Nothing is lost; every subscriber (and the server's send buffer)
    /// waits for the slowest. The default.
    #[default]
    Backpressure,
    /// Drop the slow subscriber's oldest buffered events; it then receives
    /// [`SubscriptionError::Lagged`] with the number dropped, and goes on.
    /// Other subscribers are not slowed down.
    Lag,
}

/// An error from a [`Subscription`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// This many events were dropped because the subscriber fell behind
    /// ([`Overflow::Lag`]); the subscription goes on.
    Lagged(u64),
    /// The stream ended with this error; the subscription ends after it.
    Stream(Arc<Error>),
}

impl fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionError::Lagged(n) => {
                write!(f, "subscriber fell behind; {n} events were dropped")
            }
            SubscriptionError::Stream(_) => f.write_str("the event stream ended with an error"),
        }
    }
}

impl std::error::Error for SubscriptionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubscriptionError::Stream(e) => Some(&**e),
            SubscriptionError::Lagged(_) => None,
        }
    }
}

/// Fans the events of one [`EventSource`] (one connection) out to any
/// number of [`Subscription`]s, by event type or all of them.
///
/// [`Dispatcher::spawn`] moves the stream into a Tokio task, the driver.
/// The connection stays open while any `Dispatcher` handle (it is `Clone`)
/// or any subscription is alive; when the last is dropped, or on
/// [`close`](Dispatcher::close), the driver closes the connection and
/// ends. Subscribing and unsubscribing (dropping a subscription) work at
/// any time; an event reaches the subscriptions present when it arrives.
///
/// Each subscription buffers up to a capacity (default
/// [`DEFAULT_SUBSCRIBER_CAPACITY`]); when one is full, the [`Overflow`]
/// policy decides: wait for it (the default, lossless) or drop its oldest
/// events and tell it so.
///
/// A terminal error of the stream reaches every subscription, as
/// [`SubscriptionError::Stream`], before each ends; a clean end (204,
/// [`close`](Dispatcher::close), an end marker) ends each without error.
///
/// # Example
///
/// ```no_run
/// use futures::StreamExt;
/// use ssekit::{Dispatcher, EventSource};
///
/// # async fn run() -> Result<(), ssekit::Error> {
/// let es = EventSource::new("http://127.0.0.1:8080/dashboard")?;
/// let hub = Dispatcher::spawn(es);
/// let mut metrics = hub.subscribe("metrics");
/// let mut alerts = hub.subscribe("alerts");
///
/// tokio::spawn(async move {
///     while let Some(Ok(alert)) = alerts.next().await {
///         eprintln!("ALERT {}", alert.data());
///     }
/// });
/// while let Some(Ok(m)) = metrics.next().await {
///     println!("metrics {}", m.data());
/// }
/// # Ok(())
/// # }
/// ```
pub struct Dispatcher {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<Registry>,
    capacity: usize,
    overflow: Overflow,
    /// The stream, until [`Dispatcher::start`] hands it to the driver.
    unstarted: Mutex<Option<EventSource>>,
}

#[derive(Default)]
struct Registry {
    by_type: HashMap<Arc<str>, Vec<Arc<Slot>>>,
    all: Vec<Arc<Slot>>,
    /// Event subscriptions: they also get the non-message events.
    control: Vec<Arc<Slot>>,
    /// Set once the driver ended: late subscribers get it at once.
    ended: Option<End>,
    handles: usize,
    close_requested: bool,
    /// A subscription has existed: until then the driver reads nothing, so
    /// that `spawn` then `subscribe` loses no event however late the
    /// subscribing thread runs.
    subscribed: bool,
    driver: Option<Waker>,
}

#[derive(Clone)]
enum End {
    Clean,
    Error(Arc<Error>),
}

/// One subscriber's buffer.
struct Slot {
    state: Mutex<SlotState>,
    /// An [`EventSubscription`]'s: receives the non-message events too.
    control: bool,
}

struct SlotState {
    queue: VecDeque<Event>,
    lagged: u64,
    end: Option<End>,
    receiver: Option<Waker>,
    /// The driver, waiting for room (backpressure).
    sender: Option<Waker>,
    gone: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent
    // (every critical section is a few field updates), so poisoning is
    // ignored rather than spread to every subscriber.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Subscriptions alive. An event subscription is counted once, in
    /// `control`, however many types it listens to.
    fn live_subscribers(&self) -> usize {
        let typed: usize = self
            .by_type
            .values()
            .flatten()
            .filter(|s| !s.control)
            .count();
        self.all.len() + self.control.len() + typed
    }

    fn remove(&mut self, slot: &Arc<Slot>) {
        self.all.retain(|s| !Arc::ptr_eq(s, slot));
        self.control.retain(|s| !Arc::ptr_eq(s, slot));
        self.by_type.retain(|_, slots| {
            slots.retain(|s| !Arc::ptr_eq(s, slot));
            !slots.is_empty()
        });
    }

    /// Adds `slot` to the subscribers of `event_type`, once.
    fn add_type(&mut self, event_type: &str, slot: &Arc<Slot>) {
        let slots = self.by_type.entry(Arc::from(event_type)).or_default();
        if !slots.iter().any(|s| Arc::ptr_eq(s, slot)) {
            slots.push(slot.clone());
        }
    }

    fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }

    fn slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.all
            .iter()
            .chain(&self.control)
            .chain(self.by_type.values().flatten())
    }
}

impl Dispatcher {
    /// Spawns the driver for `source` on the current Tokio runtime, with the
    /// default capacity and [`Overflow::Backpressure`].
    ///
    /// The driver reads nothing until the first subscription exists, so the
    /// first subscriber misses nothing, however late it subscribes. After
    /// that, an event reaches the subscriptions that exist when it arrives:
    /// to give several subscribers the very first event, use
    /// [`new`](Self::new), subscribe them all, then [`start`](Self::start).
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn spawn(source: EventSource) -> Dispatcher {
        Dispatcher::spawn_with(source, DEFAULT_SUBSCRIBER_CAPACITY, Overflow::default())
    }

    /// Spawns the driver with a per-subscriber buffer of `capacity` events
    /// (at least 1) and an overflow policy.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn spawn_with(source: EventSource, capacity: usize, overflow: Overflow) -> Dispatcher {
        let hub = Dispatcher::new(source, capacity, overflow);
        hub.start();
        hub
    }

    /// A dispatcher that does not read the stream yet: subscribe, then call
    /// [`start`](Self::start), so that no event can arrive before the
    /// subscriptions exist. `capacity` is each subscription's buffer (at
    /// least 1).
    pub fn new(source: EventSource, capacity: usize, overflow: Overflow) -> Dispatcher {
        let shared = Arc::new(Shared {
            state: Mutex::new(Registry {
                handles: 1,
                ..Registry::default()
            }),
            capacity: capacity.max(1),
            overflow,
            unstarted: Mutex::new(Some(source)),
        });
        Dispatcher { shared }
    }

    /// Spawns the driver on the current Tokio runtime (once; later calls do
    /// nothing).
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn start(&self) {
        if let Some(source) = lock(&self.shared.unstarted).take() {
            tokio::spawn(Driver {
                source,
                shared: self.shared.clone(),
                delivering: None,
                finished: false,
            });
        }
    }

    /// A subscription to the events of type `event_type` (`"message"` for
    /// events sent without an `event:` field).
    pub fn subscribe(&self, event_type: &str) -> Subscription {
        Subscription {
            rx: self.register(Some(&[event_type]), false),
        }
    }

    /// A subscription to every event, whatever its type.
    pub fn subscribe_all(&self) -> Subscription {
        Subscription {
            rx: self.register(None, false),
        }
    }

    /// A subscription to the events of the given types *and* to the
    /// stream's other items, in stream order: [`Event::Open`],
    /// [`Event::Comment`] (when the source yields them) and
    /// [`Event::Reconnecting`] (likewise). More types can be added later
    /// with [`EventSubscription::listener`].
    pub fn subscribe_events(&self, event_types: &[&str]) -> EventSubscription {
        EventSubscription {
            rx: self.register(Some(event_types), true),
        }
    }

    fn register(&self, event_types: Option<&[&str]>, control: bool) -> Receiver {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                queue: VecDeque::new(),
                lagged: 0,
                end: None,
                receiver: None,
                sender: None,
                gone: false,
            }),
            control,
        });
        let mut reg = lock(&self.shared.state);
        match &reg.ended {
            Some(end) => lock(&slot.state).end = Some(end.clone()),
            None => {
                match event_types {
                    Some(types) => {
                        for t in types {
                            reg.add_type(t, &slot);
                        }
                    }
                    None => reg.all.push(slot.clone()),
                }
                if control {
                    reg.control.push(slot.clone());
                }
                if !reg.subscribed {
                    reg.subscribed = true;
                    reg.wake_driver();
                }
            }
        }
        Receiver {
            slot,
            shared: self.shared.clone(),
            done: false,
        }
    }

    /// How many subscriptions are alive.
    pub fn subscriber_count(&self) -> usize {
        lock(&self.shared.state).live_subscribers()
    }

    /// Whether the driver has ended (the stream closed or failed).
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.state).ended.is_some()
    }

    /// Closes the connection; every subscription ends after the events it
    /// already holds.
    pub fn close(&self) {
        let mut reg = lock(&self.shared.state);
        reg.close_requested = true;
        reg.wake_driver();
    }
}

impl Clone for Dispatcher {
    fn clone(&self) -> Self {
        lock(&self.shared.state).handles += 1;
        Dispatcher {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let mut reg = lock(&self.shared.state);
        reg.handles -= 1;
        if reg.handles == 0 && reg.live_subscribers() == 0 {
            reg.wake_driver();
        }
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("subscribers", &self.subscriber_count())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// The receiving end shared by both kinds of subscription.
struct Receiver {
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    done: bool,
}

impl Receiver {
    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Event, SubscriptionError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut st = lock(&self.slot.state);
        if st.lagged > 0 {
            let n = std::mem::take(&mut st.lagged);
            return Poll::Ready(Some(Err(SubscriptionError::Lagged(n))));
        }
        if let Some(event) = st.queue.pop_front() {
            if let Some(w) = st.sender.take() {
                w.wake();
            }
            return Poll::Ready(Some(Ok(event)));
        }
        match st.end.clone() {
            Some(end) => {
                drop(st);
                self.done = true;
                Poll::Ready(match end {
                    End::Clean => None,
                    End::Error(e) => Some(Err(SubscriptionError::Stream(e))),
                })
            }
            None => {
                wake::remember(&mut st.receiver, cx.waker());
                Poll::Pending
            }
        }
    }

    fn fmt(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.slot.state);
        f.debug_struct(name)
            .field("buffered", &st.queue.len())
            .field("ended", &st.end.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.slot.state);
            st.gone = true;
            if let Some(w) = st.sender.take() {
                w.wake();
            }
        }
        let mut reg = lock(&self.shared.state);
        reg.remove(&self.slot);
        if reg.handles == 0 && reg.live_subscribers() == 0 {
            reg.wake_driver();
        }
    }
}

/// One subscriber's stream of events; made by [`Dispatcher::subscribe`] or
/// [`Dispatcher::subscribe_all`]. Dropping it unsubscribes.
///
/// Yields `Ok(event)`, `Err(`[`SubscriptionError::Lagged`]`)` when events
/// were dropped for it, and at the end of a failed stream one
/// `Err(`[`SubscriptionError::Stream`]`)`; then `None`.
pub struct Subscription {
    rx: Receiver,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rx.fmt("Subscription", f)
    }
}

impl Stream for Subscription {
    type Item = Result<MessageEvent, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return Poll::Ready(match ready!(self.rx.poll_event(cx)) {
                Some(Ok(Event::Message(m))) => Some(Ok(m)),
                Some(Ok(_)) => continue, // only messages are queued here
                Some(Err(e)) => Some(Err(e)),
                None => None,
            });
        }
    }
}

impl FusedStream for Subscription {
    fn is_terminated(&self) -> bool {
        self.rx.done
    }
}

/// A subscription to some event types and to the stream's lifecycle
/// (open, comments, reconnections), in stream order; made by
/// [`Dispatcher::subscribe_events`]. Dropping it unsubscribes.
///
/// Yields the same errors as [`Subscription`].
pub struct EventSubscription {
    rx: Receiver,
}

impl fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rx.fmt("EventSubscription", f)
    }
}

impl EventSubscription {
    /// A handle that adds event types to this subscription, usable from
    /// another task while this one is being polled.
    pub fn listener(&self) -> Listener {
        Listener {
            slot: Arc::downgrade(&self.rx.slot),
            shared: Arc::downgrade(&self.rx.shared),
        }
    }
}

impl Stream for EventSubscription {
    type Item = Result<Event, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_event(cx)
    }
}

impl FusedStream for EventSubscription {
    fn is_terminated(&self) -> bool {
        self.rx.done
    }
}

/// Adds event types to an [`EventSubscription`]; made by
/// [`EventSubscription::listener`]. Cloneable; does not keep the
/// subscription alive.
#[derive(Clone)]
pub struct Listener {
    slot: Weak<Slot>,
    shared: Weak<Shared>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// From now on, events of `event_type` reach the subscription too.
    /// Returns `false` when the subscription or the stream is gone.
    pub fn listen(&self, event_type: &str) -> bool {
        let (Some(slot), Some(shared)) = (self.slot.upgrade(), self.shared.upgrade()) else {
            return false;
        };
        let mut reg = lock(&shared.state);
        if reg.ended.is_some() || lock(&slot.state).gone {
            return false;
        }
        reg.add_type(event_type, &slot);
        true
    }
}

/// The task that polls the stream and fills the subscribers' buffers.
struct Driver {
    source: EventSource,
    shared: Arc<Shared>,
    /// An event still to be handed to these subscribers (backpressure).
    delivering: Option<(Event, Vec<Arc<Slot>>)>,
    /// `finish` ran; otherwise dropping the driver ends the subscribers.
    finished: bool,
}

impl Driver {
    /// Hands the current event to each waiting subscriber; `Pending` while
    /// one is full under backpressure.
    fn poll_deliver(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((event, targets)) = &mut self.delivering else {
            return Poll::Ready(());
        };
        while let Some(slot) = targets.last() {
            let mut st = lock(&slot.state);
            if !st.gone {
                if st.queue.len() >= self.shared.capacity {
                    match self.shared.overflow {
                        Overflow::Backpressure => {
                            st.sender = Some(cx.waker().clone());
                            return Poll::Pending;
                        }
                        Overflow::Lag => {
                            st.queue.pop_front();
                            st.lagged += 1;
                        }
                    }
                }
                st.queue.push_back(event.clone());
                if let Some(w) = st.receiver.take() {
                    w.wake();
                }
            }
            drop(st);
            targets.pop();
        }
        self.delivering = None;
        Poll::Ready(())
    }

    fn finish(&mut self, end: End) {
        self.finished = true;
        self.source.close();
        let mut reg = lock(&self.shared.state);
        reg.ended = Some(end.clone());
        for slot in reg.slots() {
            let mut st = lock(&slot.state);
            st.end = Some(end.clone());
            if let Some(w) = st.receiver.take() {
                w.wake();
            }
        }
        reg.all.clear();
        reg.control.clear();
        reg.by_type.clear();
    }
}

impl Drop for Driver {
    /// A driver dropped before it finished was stopped from outside: the
    /// user's `on_request` hook (which runs in this task) panicked, the task
    /// was aborted, or the runtime shut down. Every subscriber is told, so
    /// none waits for ever.
    fn drop(&mut self) {
        if !self.finished {
            let panicked = std::thread::panicking();
            if panicked {
                tracing::error!("dispatcher driver panicked; ending every subscription");
            } else {
                tracing::warn!("dispatcher driver stopped (task aborted or runtime shut down)");
            }
            self.finish(End::Error(Arc::new(Error::new(Kind::DriverStopped {
                panicked,
            }))));
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            {
                let mut reg = lock(&this.shared.state);
                let unwanted = reg.handles == 0 && reg.live_subscribers() == 0;
                if unwanted || reg.close_requested {
                    drop(reg);
                    tracing::debug!("dispatcher closing the stream");
                    this.finish(End::Clean);
                    return Poll::Ready(());
                }
                wake::remember(&mut reg.driver, cx.waker());
                if !reg.subscribed {
                    // Woken by the first subscription.
                    return Poll::Pending;
                }
            }
            if this.poll_deliver(cx).is_pending() {
                return Poll::Pending;
            }
            match Pin::new(&mut this.source).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.finish(End::Clean);
                    return Poll::Ready(());
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish(End::Error(Arc::new(e)));
                    return Poll::Ready(());
                }
                Poll::Ready(Some(Ok(event))) => {
                    let reg = lock(&this.shared.state);
                    let targets: Vec<Arc<Slot>> = match &event {
                        Event::Message(m) => {
                            let typed = reg.by_type.get(m.event()).into_iter().flatten();
                            reg.all.iter().chain(typed).cloned().collect()
                        }
                        _ => reg.control.clone(),
                    };
                    drop(reg);
                    if !targets.is_empty() {
                        this.delivering = Some((event, targets));
                    }
                }
            }
        }
    }
}

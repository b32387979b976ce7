//! The reconnection policy: when to retry (the classifier), how long to
//! wait (capped exponential backoff with jitter), and when to give up (an
//! attempt limit and a time budget). Pure: the state machine passes in the
//! failure and the time, and gets back what to do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::policy::{was_healthy, Decision, Failure, MAX_SERVER_DELAY};

/// The most jitter adds to the first reconnection's delay (SPEC rule 23:
/// never earlier than the server asked, at most 200 ms later).
const FIRST_JITTER_MAX: Duration = Duration::from_millis(200);

/// The growth floor when both the server's `retry:` and the initial delay
/// are zero: consecutive failures never storm a server.
const ZERO_BASE_FLOOR: Duration = Duration::from_secs(1);

type Classifier = Arc<dyn Fn(&Failure<'_>) -> Decision + Send + Sync>;

/// How an [`EventSource`](crate::EventSource) decides whether to reconnect,
/// how long it waits, and when it gives up.
///
/// **Whether** a failure is retried is decided by [`Decision::default_for`]
/// (its docs hold the table: network errors, timeouts, the end of a body and
/// 408, 429 and 5xx but 501/505 retry; other statuses, TLS certificate
/// failures, redirect loops and oversized events stop), or by your own
/// [`classify`](Self::classify) function.
///
/// **How long** it waits, for reconnection attempt *k* in a row (1 for the
/// first reconnection after a healthy connection), where `base` is the
/// server's latest `retry:` value (capped at one hour) or else
/// [`initial_delay`](Self::initial_delay):
///
/// - *k* = 1: exactly `base` (`retry: 0` reconnects at once). Jitter only
///   lengthens it, by at most 200 ms (and at most half of `base`): a
///   reconnection never comes before the server asked.
/// - *k* ≥ 2: `floor × multiplier^(k−1)`, capped at `max_delay` (but never
///   below `floor`), where `floor` is `base`, or `initial_delay` when `base`
///   is zero, or 1 s when both are: consecutive failures always back off.
///   Jitter draws the delay from `[max(delay/2, floor), delay]`.
/// - A `Retry-After` header on a retried status replaces the delay for that
///   attempt, exactly (no jitter), capped at one hour.
///
/// The growth and the attempt count start again after a **healthy**
/// connection: one that made **progress** (it delivered an event with an ID
/// the stream had not reached before, or, on a stream without IDs, events
/// and then a graceful end), or stayed open for
/// [`healthy_after`](Self::healthy_after) (so a quiet stream cut by a
/// proxy's read timeout is not counted as failing). A server that answers
/// every connection with the same replayed event and then dies is a crash
/// loop, not progress: it is backed off and stopped by the attempt limit.
/// A server that sends new events and closes at its `retry:` (polling) is
/// reconnected at its `retry:`, without growth.
///
/// **When it gives up**: after [`max_attempts`](Self::max_attempts)
/// attempts in a row, or when the next attempt would start more than
/// [`max_elapsed_time`](Self::max_elapsed_time) after the first failure of
/// the run; the stream then ends with an error for which
/// [`Error::is_retries_exhausted`](crate::Error::is_retries_exhausted) is
/// true.
///
/// | setting | default |
/// |---|---|
/// | [`initial_delay`](Self::initial_delay) | 1 s |
/// | [`multiplier`](Self::multiplier) | 2.0 |
/// | [`max_delay`](Self::max_delay) | 30 s |
/// | [`jitter`](Self::jitter) | on |
/// | [`max_attempts`](Self::max_attempts) | unlimited |
/// | [`max_elapsed_time`](Self::max_elapsed_time) | unlimited |
/// | [`healthy_after`](Self::healthy_after) | 60 s |
/// | [`classify`](Self::classify) | [`Decision::default_for`] |
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ssekit::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .initial_delay(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(10))
///     .max_attempts(5)
///     .jitter(false);
/// let delays: Vec<_> = policy.backoff().take(6).collect();
/// assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10_000].map(Duration::from_millis));
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    pub(crate) initial_delay: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: bool,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) healthy_after: Duration,
    pub(crate) seed: Option<u64>,
    classifier: Option<Classifier>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("initial_delay", &self.initial_delay)
            .field("multiplier", &self.multiplier)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("max_attempts", &self.max_attempts)
            .field("max_elapsed_time", &self.max_elapsed)
            .field("healthy_after", &self.healthy_after)
            .field("seed", &self.seed)
            .field("classifier", &self.classifier.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Two policies are equal when their settings are, and they use the same
/// classifier (the same `classify` call, or none).
impl PartialEq for RetryPolicy {
    fn eq(&self, other: &Self) -> bool {
        let same_classifier = match (&self.classifier, &other.classifier) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_classifier
            && self.initial_delay == other.initial_delay
            && self.multiplier == other.multiplier
            && self.max_delay == other.max_delay
            && self.jitter == other.jitter
            && self.max_attempts == other.max_attempts
            && self.max_elapsed == other.max_elapsed
            && self.healthy_after == other.healthy_after
            && self.seed == other.seed
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: true,
            max_attempts: None,
            max_elapsed: None,
            healthy_after: Duration::from_secs(60),
            seed: None,
            classifier: None,
        }
    }
}

impl RetryPolicy {
    /// The delay before the first reconnection, until the server sends a
    /// `retry:` field, and the floor of the growth when the server sends
    /// `retry: 0`. Default: 1 s.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The growth factor between consecutive failed attempts; must be finite
    /// and at least 1.0 (1.0 means a constant delay), or
    /// [`build`](crate::EventSourceBuilder::build) fails. Default: 2.0.
    pub fn multiplier(mut self, factor: f64) -> Self {
        self.multiplier = factor;
        self
    }

    /// The cap on the grown delay (never below the base delay). Default:
    /// 30 s.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Whether delays are spread at random (see the type's docs: the first
    /// reconnection is only ever lengthened, by at most 200 ms). Default: on.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Allows at most `attempts` reconnection attempts in a row without a
    /// healthy connection (progress, or one open for
    /// [`healthy_after`](Self::healthy_after)); the stream then ends with an
    /// error for which
    /// [`Error::is_retries_exhausted`](crate::Error::is_retries_exhausted) is
    /// true. A server that never makes progress (no events, or only replays
    /// of what was seen) sees exactly `1 + attempts` requests. `0` never
    /// reconnects. Default: unlimited.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Reconnects for ever (the default; explicit for readers of your code).
    pub fn unlimited_attempts(mut self) -> Self {
        self.max_attempts = None;
        self
    }

    /// The attempt limit, `None` when unlimited.
    pub fn attempt_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    /// Gives up when the next attempt would start more than `budget` after
    /// the first failure of a run of failures (a healthy connection ends the
    /// run). The stream then ends with an error for which
    /// [`Error::is_retries_exhausted`](crate::Error::is_retries_exhausted) is
    /// true. Default: no limit.
    pub fn max_elapsed_time(mut self, budget: Duration) -> Self {
        self.max_elapsed = Some(budget);
        self
    }

    /// How long a connection must stay open, without making progress, to
    /// count as healthy: when it ends, the backoff growth and the attempt
    /// count start again, as after a connection that made progress.
    /// Default: 60 s.
    pub fn healthy_after(mut self, open: Duration) -> Self {
        self.healthy_after = open;
        self
    }

    /// Decides with `classifier` whether each failure is retried, instead of
    /// [`Decision::default_for`] (which it can delegate to). It runs in the
    /// task that polls the stream, once per failure. Default: the table of
    /// [`Decision::default_for`].
    ///
    /// ```
    /// use reqwest::StatusCode;
    /// use ssekit::{Decision, FailureKind, RetryPolicy};
    ///
    /// // Retry 409 (a lock held during a deploy), stop on 503 (we have a
    /// // fallback), never retry a clean end of the body.
    /// let policy = RetryPolicy::default().classify(|f| match (f.kind(), f.status()) {
    ///     (_, Some(StatusCode::CONFLICT)) => Decision::Retry,
    ///     (_, Some(StatusCode::SERVICE_UNAVAILABLE)) => Decision::Stop,
    ///     (FailureKind::Eof, _) => Decision::Stop,
    ///     _ => Decision::default_for(f),
    /// });
    /// # drop(policy);
    /// ```
    pub fn classify<F>(mut self, classifier: F) -> Self
    where
        F: Fn(&Failure<'_>) -> Decision + Send + Sync + 'static,
    {
        self.classifier = Some(Arc::new(classifier));
        self
    }

    /// What this policy decides for `failure`: the classifier's answer, or
    /// [`Decision::default_for`].
    pub fn decide(&self, failure: &Failure<'_>) -> Decision {
        match &self.classifier {
            Some(classify) => classify(failure),
            None => Decision::default_for(failure),
        }
    }

    /// Seeds the jitter, so that the delays are reproducible (in tests).
    /// Default: seeded from the operating system.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The sequence of delays this policy gives for consecutive failed
    /// attempts 1, 2, 3, ... (an endless iterator: the attempt limit is
    /// enforced by the stream, not here).
    pub fn backoff(&self) -> Backoff {
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        Backoff {
            initial_delay: self.initial_delay,
            multiplier: self.multiplier,
            max_delay: self.max_delay,
            jitter: self.jitter,
            base: self.initial_delay,
            attempt: 0,
            rng,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(format!(
                "retry multiplier must be finite and at least 1.0, got {}",
                self.multiplier
            ));
        }
        Ok(())
    }
}

/// The delays of a [`RetryPolicy`], one per consecutive failed attempt.
///
/// [`reset`](Backoff::reset) starts the growth again (after a healthy
/// connection); [`set_base`](Backoff::set_base) applies a server's `retry:`
/// value.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial_delay: Duration,
    multiplier: f64,
    max_delay: Duration,
    jitter: bool,
    base: Duration,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    /// Replaces the base delay, as a `retry:` field does; capped at
    /// [`MAX_SERVER_DELAY`] (one hour).
    pub fn set_base(&mut self, base: Duration) {
        self.base = base.min(MAX_SERVER_DELAY);
    }

    /// The base delay: the server's latest `retry:` value, or the policy's
    /// initial delay.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// Starts the growth again from the base delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// What consecutive failures grow from: never zero.
    fn floor(&self) -> Duration {
        [self.base, self.initial_delay]
            .into_iter()
            .find(|d| !d.is_zero())
            .unwrap_or(ZERO_BASE_FLOOR)
    }

    /// The delay before attempt `attempt` (1-based) without jitter.
    fn nominal(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return self.base;
        }
        let floor = self.floor();
        let cap = self.max_delay.max(floor);
        let exp = i32::try_from(attempt - 1).unwrap_or(i32::MAX);
        let secs = floor.as_secs_f64() * self.multiplier.powi(exp);
        if secs.is_finite() && secs < cap.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            cap
        }
    }
}

/// A uniform draw from `[low, high]` (`low` when the range is empty).
fn uniform(rng: &mut SmallRng, low: Duration, high: Duration) -> Duration {
    let lo = u64::try_from(low.as_nanos()).unwrap_or(u64::MAX);
    let hi = u64::try_from(high.as_nanos()).unwrap_or(u64::MAX);
    if hi <= lo {
        return low;
    }
    Duration::from_nanos(rng.random_range(lo..=hi))
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.nominal(self.attempt);
        if !self.jitter {
            return Some(delay);
        }
        Some(if self.attempt == 1 {
            // Never shorter than the server asked; a little longer spreads
            // a fleet of clients.
            let extra = FIRST_JITTER_MAX.min(delay / 2);
            uniform(&mut self.rng, delay, delay.saturating_add(extra))
        } else {
            let low = (delay / 2).max(self.floor());
            uniform(&mut self.rng, low, delay)
        })
    }
}

/// What the stream does after a failed attempt: [`Retrier::on_failure`]'s
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Wait `delay`, then make reconnection attempt `attempt`.
    Wait { attempt: u32, delay: Duration },
    /// The classifier said stop: end with the failure.
    Stop,
    /// The attempt limit is reached after `attempts` attempts.
    Exhausted { attempts: u32 },
    /// The time budget is spent: `elapsed` since the first failure.
    OutOfTime { attempts: u32, elapsed: Duration },
}

/// The retry state of one stream: the attempt count, the backoff and when
/// the current run of failures began. Pure: time is passed in.
#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    backoff: Backoff,
    /// Reconnection attempts in a row without a healthy connection.
    attempt: u32,
    failing_since: Option<Instant>,
}

impl Retrier {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        Retrier {
            backoff: policy.backoff(),
            attempt: 0,
            failing_since: None,
        }
    }

    /// The reconnection attempts made in a row (0 for a first try or after
    /// a healthy connection).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A `retry:` field arrived.
    pub(crate) fn set_server_delay(&mut self, delay: Duration) {
        self.backoff.set_base(delay);
    }

    /// Starts afresh after a healthy connection: no attempts in a row, the
    /// growth from the base, no run of failures.
    fn restart(&mut self) {
        self.attempt = 0;
        self.backoff.reset();
        self.failing_since = None;
    }

    /// Decides what follows `failure`, seen at `now`. With `exact_first`,
    /// the first reconnection in a row waits exactly the base delay, with
    /// no jitter (MCP clients must honour `retry:` to the millisecond).
    pub(crate) fn on_failure(
        &mut self,
        policy: &RetryPolicy,
        failure: &Failure<'_>,
        now: Instant,
        exact_first: bool,
    ) -> Verdict {
        if was_healthy(failure, policy.healthy_after) {
            self.restart();
        }
        let server_delay = match policy.decide(failure) {
            Decision::Stop => return Verdict::Stop,
            Decision::Retry => None,
            Decision::RetryAfter(delay) => Some(delay.min(MAX_SERVER_DELAY)),
        };
        let attempt = self.attempt.saturating_add(1);
        if policy.max_attempts.is_some_and(|limit| attempt > limit) {
            return Verdict::Exhausted {
                attempts: self.attempt,
            };
        }
        // The attempt counts for growth even when the server set its delay.
        let grown = self.backoff.next().unwrap_or_default();
        let grown = if exact_first && attempt == 1 {
            self.backoff.base()
        } else {
            grown
        };
        let delay = server_delay.unwrap_or(grown);
        let since = *self.failing_since.get_or_insert(now);
        if let Some(budget) = policy.max_elapsed {
            let elapsed = now.saturating_duration_since(since);
            if elapsed.saturating_add(delay) > budget {
                return Verdict::OutOfTime {
                    attempts: self.attempt,
                    elapsed,
                };
            }
        }
        self.attempt = attempt;
        Verdict::Wait { attempt, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn exponential_then_capped() {
        let p = RetryPolicy::default().jitter(false);
        let got: Vec<_> = p.backoff().take(8).collect();
        let want = [1, 2, 4, 8, 16, 30, 30, 30].map(Duration::from_secs);
        assert_eq!(got, want);
    }

    #[test]
    fn server_retry_sets_base_and_cap_never_cuts_below_it() {
        let mut b = RetryPolicy::default().jitter(false).backoff();
        b.set_base(ms(3000));
        assert_eq!(
            b.by_ref().take(3).collect::<Vec<_>>(),
            [ms(3000), ms(6000), ms(12000)]
        );
        b.reset();
        b.set_base(Duration::from_secs(60));
        assert_eq!(
            b.by_ref().take(2).collect::<Vec<_>>(),
            [Duration::from_secs(60); 2]
        );
    }

    #[test]
    fn reset_restarts_growth() {
        let mut b = RetryPolicy::default().jitter(false).backoff();
        assert_eq!(b.by_ref().take(3).last(), Some(Duration::from_secs(4)));
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn jitter_never_shortens_the_first_delay_and_keeps_growth_above_the_floor() {
        for base in [ms(0), ms(100), ms(1200), Duration::from_secs(5)] {
            let p = RetryPolicy::default().jitter_seed(7);
            let nominal: Vec<_> = {
                let mut b = p.clone().jitter(false).backoff();
                b.set_base(base);
                b.take(12).collect()
            };
            for run in 0..50u64 {
                let mut b = p.clone().jitter_seed(run).backoff();
                b.set_base(base);
                let got: Vec<_> = b.take(12).collect();
                // The first: never early, at most 200 ms (and half the base) late.
                let extra = ms(200).min(base / 2);
                assert!(
                    got[0] >= base && got[0] <= base + extra,
                    "first delay {:?} for base {base:?}",
                    got[0]
                );
                let floor = if base.is_zero() {
                    Duration::from_secs(1)
                } else {
                    base
                };
                for (g, n) in got.iter().zip(&nominal).skip(1) {
                    assert!(
                        *g <= *n && *g >= (*n / 2).max(floor),
                        "{g:?} outside [{:?}, {n:?}] (base {base:?})",
                        (*n / 2).max(floor)
                    );
                }
            }
        }
        let p = RetryPolicy::default().jitter_seed(3);
        let a: Vec<_> = p.backoff().take(20).collect();
        assert_eq!(
            a,
            p.backoff().take(20).collect::<Vec<_>>(),
            "same seed, same delays"
        );
        let plain: Vec<_> = p.clone().jitter(false).backoff().take(20).collect();
        assert_ne!(a, plain, "jitter never applied");
    }

    #[test]
    fn retry_zero_is_at_once_then_backs_off_from_a_non_zero_floor() {
        let mut b = RetryPolicy::default().jitter(false).backoff();
        b.set_base(Duration::ZERO);
        assert_eq!(
            b.by_ref().take(5).collect::<Vec<_>>(),
            [0, 2000, 4000, 8000, 16000].map(ms)
        );
        // Nothing configured at all: the floor is still 1 s.
        let mut z = RetryPolicy::default()
            .initial_delay(Duration::ZERO)
            .jitter(false)
            .backoff();
        assert_eq!(
            z.by_ref().take(4).collect::<Vec<_>>(),
            [0, 2000, 4000, 8000].map(ms)
        );
        // 0 × 2^1024 was NaN: even absurd attempt counts give the cap.
        z.attempt = 1024;
        assert_eq!(z.next(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn server_delays_are_capped_at_one_hour() {
        let mut b = RetryPolicy::default().backoff();
        b.set_base(Duration::from_millis(u64::MAX));
        assert_eq!(b.base(), MAX_SERVER_DELAY);
        let first = b.next().unwrap();
        assert!(first >= MAX_SERVER_DELAY && first <= MAX_SERVER_DELAY + ms(200));
    }

    #[test]
    fn the_largest_durations_saturate_instead_of_panicking() {
        let mut b = RetryPolicy::default()
            .initial_delay(Duration::MAX)
            .max_delay(Duration::MAX)
            .multiplier(1e300)
            .backoff();
        for _ in 0..5 {
            assert!(b.next().unwrap() >= Duration::from_secs(3600));
        }
        let mut z = RetryPolicy::default()
            .max_delay(Duration::MAX)
            .multiplier(1e300)
            .jitter(false)
            .backoff();
        assert_eq!(z.next(), Some(Duration::from_secs(1)));
        assert_eq!(z.next(), Some(Duration::MAX));
    }

    #[test]
    fn huge_attempt_counts_saturate() {
        let mut b = RetryPolicy::default().jitter(false).backoff();
        b.attempt = u32::MAX - 1;
        assert_eq!(b.next(), Some(Duration::from_secs(30)));
        assert_eq!(b.next(), Some(Duration::from_secs(30)));
        let mut z = RetryPolicy::default()
            .initial_delay(Duration::ZERO)
            .backoff();
        assert_eq!(z.next(), Some(Duration::ZERO));
    }

    mod retrier {
        use super::*;
        use crate::error::{Kind, Response};
        use crate::policy::{Decision, Failure};
        use crate::Error;
        use reqwest::header::{HeaderMap, HeaderValue};
        use reqwest::StatusCode;
        use std::time::SystemTime;

        fn status(code: u16, retry_after: Option<&str>) -> Error {
            let mut headers = HeaderMap::new();
            if let Some(v) = retry_after {
                headers.insert("retry-after", HeaderValue::from_str(v).unwrap());
            }
            Error::new(Kind::Status(Box::new(Response {
                status: StatusCode::from_u16(code).unwrap(),
                headers,
                body: String::new(),
                url: "http://127.0.0.1/".parse().unwrap(),
            })))
        }

        fn fail(r: &mut Retrier, p: &RetryPolicy, e: &Error, now: Instant) -> Verdict {
            r.on_failure(
                p,
                &Failure::from_error(e, SystemTime::UNIX_EPOCH),
                now,
                false,
            )
        }

        fn wait(attempt: u32, delay_ms: u64) -> Verdict {
            Verdict::Wait {
                attempt,
                delay: ms(delay_ms),
            }
        }

        #[test]
        fn limit_counts_attempts_in_a_row_and_progress_resets_it() {
            let p = RetryPolicy::default().jitter(false).max_attempts(2);
            let mut r = Retrier::new(&p);
            let e = Error::new(Kind::Eof);
            let t = Instant::now();
            let at = SystemTime::UNIX_EPOCH;
            let open = Some(ms(100));
            // Events that replay what was seen: no progress, the limit holds.
            let replay = Failure::from_error(&e, at).delivered(true).open_for(open);
            assert_eq!(r.on_failure(&p, &replay, t, false), wait(1, 1000));
            assert_eq!(r.on_failure(&p, &replay, t, false), wait(2, 2000));
            assert_eq!(
                r.on_failure(&p, &replay, t, false),
                Verdict::Exhausted { attempts: 2 }
            );
            let mut r = Retrier::new(&p);
            assert_eq!(fail(&mut r, &p, &e, t), wait(1, 1000));
            assert_eq!(fail(&mut r, &p, &e, t), wait(2, 2000));
            // Progress starts again from the base, however many came before.
            let new = Failure::from_error(&e, at)
                .delivered(true)
                .progress(true)
                .open_for(open);
            assert_eq!(r.on_failure(&p, &new, t, false), wait(1, 1000));
            assert_eq!(r.on_failure(&p, &new, t, false), wait(1, 1000));
        }

        #[test]
        fn exact_first_takes_the_jitter_off_the_first_delay_only() {
            let p = RetryPolicy::default().jitter_seed(9);
            let e = Error::new(Kind::Eof);
            let t = Instant::now();
            let at = SystemTime::UNIX_EPOCH;
            for _ in 0..20 {
                let mut r = Retrier::new(&p);
                r.set_server_delay(ms(500));
                let f = Failure::from_error(&e, at);
                assert_eq!(r.on_failure(&p, &f, t, true), wait(1, 500));
                match r.on_failure(&p, &f, t, true) {
                    Verdict::Wait { attempt: 2, delay } => {
                        assert!(delay >= ms(500) && delay <= ms(1000), "{delay:?}")
                    }
                    other => panic!("{other:?}"),
                }
            }
        }

        #[test]
        fn a_long_quiet_connection_is_healthy() {
            let p = RetryPolicy::default().jitter(false);
            let mut r = Retrier::new(&p);
            let e = Error::new(Kind::Eof);
            let t = Instant::now();
            for k in 1..=3 {
                let f = Failure::from_error(&e, SystemTime::UNIX_EPOCH).open_for(Some(ms(59_000)));
                assert_eq!(r.on_failure(&p, &f, t, false), wait(k, 1000 << (k - 1)));
            }
            let f = Failure::from_error(&e, SystemTime::UNIX_EPOCH).open_for(Some(ms(60_000)));
            assert_eq!(r.on_failure(&p, &f, t, false), wait(1, 1000));
        }

        #[test]
        fn retry_after_is_exact_but_still_grows_the_backoff() {
            let p = RetryPolicy::default().jitter_seed(1);
            let mut r = Retrier::new(&p);
            let t = Instant::now();
            assert_eq!(fail(&mut r, &p, &status(503, Some("7")), t), wait(1, 7000));
            assert_eq!(
                fail(&mut r, &p, &status(429, Some("999999")), t),
                wait(2, 3_600_000)
            );
            // Attempt 3 without Retry-After: grown to 4 s nominal, jittered down
            // to no less than 2 s.
            match fail(&mut r, &p, &status(503, None), t) {
                Verdict::Wait { attempt: 3, delay } => {
                    assert!(delay >= ms(2000) && delay <= ms(4000), "{delay:?}")
                }
                other => panic!("{other:?}"),
            }
        }

        #[test]
        fn time_budget_stops_before_an_attempt_past_it() {
            let p = RetryPolicy::default()
                .jitter(false)
                .max_elapsed_time(Duration::from_secs(10));
            let mut r = Retrier::new(&p);
            let e = Error::new(Kind::Eof);
            let t0 = Instant::now();
            assert_eq!(fail(&mut r, &p, &e, t0), wait(1, 1000));
            assert_eq!(fail(&mut r, &p, &e, t0 + ms(1000)), wait(2, 2000));
            assert_eq!(fail(&mut r, &p, &e, t0 + ms(3000)), wait(3, 4000));
            // 7 s elapsed + 8 s would pass the 10 s budget.
            assert_eq!(
                fail(&mut r, &p, &e, t0 + ms(7000)),
                Verdict::OutOfTime {
                    attempts: 3,
                    elapsed: ms(7000)
                }
            );
        }

        #[test]
        fn a_classifier_overrides_the_default_both_ways() {
            let p = RetryPolicy::default().jitter(false).classify(|f| {
                match f.status().map(|s| s.as_u16()) {
                    Some(409) => Decision::Retry,
                    Some(503) => Decision::Stop,
                    _ => Decision::default_for(f),
                }
            });
            let mut r = Retrier::new(&p);
            let t = Instant::now();
            assert_eq!(fail(&mut r, &p, &status(409, None), t), wait(1, 1000));
            assert_eq!(fail(&mut r, &p, &status(503, None), t), Verdict::Stop);
            assert_eq!(fail(&mut r, &p, &status(404, None), t), Verdict::Stop);
            assert_eq!(fail(&mut r, &p, &status(502, None), t), wait(2, 2000));
            assert_eq!(p, p.clone(), "a clone shares the classifier");
            assert_ne!(p, RetryPolicy::default().jitter(false));
        }
    }

    #[test]
    fn bad_multiplier_rejected() {
        for m in [0.5, f64::NAN, f64::INFINITY, -2.0] {
            assert!(
                RetryPolicy::default().multiplier(m).validate().is_err(),
                "{m}"
            );
        }
        assert!(RetryPolicy::default().multiplier(1.0).validate().is_ok());
    }
}

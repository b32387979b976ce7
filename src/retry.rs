//! The reconnection policy: capped exponential backoff with jitter and an
//! attempt limit.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How an [`EventSource`](crate::EventSource) waits between reconnection
/// attempts, and how many it makes.
///
/// The delay before reconnection attempt *k* (1 for the first reconnection
/// after a connection that delivered events) is
/// `base × multiplier^(k−1)`, capped at `max_delay`, where `base` is the
/// server's latest `retry:` value or else `initial_delay`. The cap never cuts
/// below `base`: a server that asks for 60 s gets 60 s. With jitter on, each
/// delay is then drawn uniformly from `[delay/2, delay]`: jitter only ever
/// shortens a delay, so a fleet of clients spreads out without waiting longer
/// than the policy says.
///
/// | setting | default |
/// |---|---|
/// | [`initial_delay`](Self::initial_delay) | 1 s |
/// | [`multiplier`](Self::multiplier) | 2.0 |
/// | [`max_delay`](Self::max_delay) | 30 s |
/// | [`jitter`](Self::jitter) | on |
/// | [`max_attempts`](Self::max_attempts) | unlimited |
///
/// A server's `Retry-After` header on a 408, 429 or 5xx answer replaces the
/// computed delay for that attempt (no jitter), up to one hour.
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
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub(crate) initial_delay: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: bool,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: true,
            max_attempts: None,
            seed: None,
        }
    }
}

impl RetryPolicy {
    /// The delay before the first reconnection, until the server sends a
    /// `retry:` field. Default: 1 s.
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

    /// The cap on the computed delay (never below the base delay). Default:
    /// 30 s.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Whether each delay is drawn from `[delay/2, delay]` rather than used
    /// as is. Default: on.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Allows at most `attempts` reconnection attempts in a row that deliver
    /// no event; the stream then ends with an error for which
    /// [`Error::is_retries_exhausted`](crate::Error::is_retries_exhausted) is
    /// true. A server that never delivers an event sees exactly
    /// `1 + attempts` requests. `0` never reconnects. Default: unlimited.
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
            policy: self.clone(),
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
/// [`reset`](Backoff::reset) starts the growth again (after a connection that
/// delivered an event); [`set_base`](Backoff::set_base) applies a server's
/// `retry:` value.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    base: Duration,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    /// Replaces the base delay, as a `retry:` field does.
    pub fn set_base(&mut self, base: Duration) {
        self.base = base;
    }

    /// Starts the growth again from the base delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before attempt `attempt` (1-based) without jitter.
    fn nominal(&self, attempt: u32) -> Duration {
        let cap = self.policy.max_delay.max(self.base);
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.policy.multiplier.powi(exp);
        let secs = self.base.as_secs_f64() * factor;
        if secs.is_finite() && secs < cap.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            cap
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.nominal(self.attempt);
        if !self.policy.jitter || delay.is_zero() {
            return Some(delay);
        }
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        Some(Duration::from_nanos(
            self.rng.random_range(nanos / 2..=nanos),
        ))
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
    fn jitter_only_shortens_never_below_half_and_is_seedable() {
        let p = RetryPolicy::default().jitter_seed(7);
        let nominal: Vec<_> = p.clone().jitter(false).backoff().take(200).collect();
        let a: Vec<_> = p.backoff().take(200).collect();
        let b: Vec<_> = p.backoff().take(200).collect();
        assert_eq!(a, b, "same seed, same delays");
        for (got, max) in a.iter().zip(&nominal) {
            assert!(
                *got <= *max && *got >= *max / 2,
                "{got:?} outside [{:?}, {max:?}]",
                *max / 2
            );
        }
        assert!(
            a.iter().zip(&nominal).any(|(g, m)| g < m),
            "jitter never applied"
        );
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

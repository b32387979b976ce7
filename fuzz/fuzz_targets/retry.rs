//! Fuzz target: the reconnect decision and the delay arithmetic.
//!
//! From arbitrary bytes: a failure (kind, status, a `Retry-After` value,
//! delivered events, how long the connection was open) and a retry policy
//! with a sequence of backoff operations (`retry:` values up to u64::MAX ms,
//! attempts, resets). Checked: no panic, no overflow, and every delay within
//! the documented bounds (`RetryPolicy`'s docs):
//! - `Retry-After` and `retry:` are capped at one hour;
//! - the first delay after a reset is the base, lengthened by jitter by at
//!   most min(200 ms, base/2), never shortened;
//! - later delays stay within [floor, max(max_delay, floor)], and within
//!   [max(nominal/2, floor), nominal] with jitter;
//! - a status failure is retried exactly when the status is transient.

#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use ssekit::{is_transient_status, Decision, Failure, FailureKind, RetryPolicy, MAX_SERVER_DELAY};

/// Reads fixed-size values from the input, zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.byte()))
    }
    fn u32(&mut self) -> u32 {
        (0..4).fold(0, |acc, _| acc << 8 | u32::from(self.byte()))
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

const KINDS: [FailureKind; 13] = [
    FailureKind::Connect,
    FailureKind::Tls,
    FailureKind::Redirect,
    FailureKind::InvalidRequest,
    FailureKind::Request,
    FailureKind::ResponseTimeout,
    FailureKind::IdleTimeout,
    FailureKind::Body,
    FailureKind::Eof,
    FailureKind::Status,
    FailureKind::ContentType,
    FailureKind::Encoding,
    FailureKind::TooLarge,
];

fn check_decision(input: &mut Input<'_>) {
    let kind = KINDS[usize::from(input.byte()) % KINDS.len()];
    let status = StatusCode::from_u16(100 + (input.u32() % 900) as u16).unwrap();
    let len = usize::from(input.byte() % 40);
    let value = input.bytes(len).to_vec();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(&value) {
        headers.insert("retry-after", v);
    }
    // Any wall-clock time, including before the epoch's far side of u32.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(input.u64() % (1 << 40));
    let mut failure = Failure::new(kind, at)
        .delivered(input.byte() & 1 == 1)
        .open_for(Some(Duration::from_millis(input.u64())));
    if kind == FailureKind::Status {
        failure = failure.with_status(status, &headers);
    }
    if let Some(d) = failure.retry_after() {
        assert!(d <= MAX_SERVER_DELAY, "Retry-After {d:?} over the cap");
    }
    let decision = Decision::default_for(&failure);
    let policy = RetryPolicy::default();
    assert_eq!(policy.decide(&failure), decision);
    match kind {
        FailureKind::Status => {
            let retried = !matches!(decision, Decision::Stop);
            assert_eq!(retried, is_transient_status(status), "{status}: {decision:?}");
            if let Decision::RetryAfter(d) = decision {
                assert!(d <= MAX_SERVER_DELAY);
                assert_eq!(Some(d), failure.retry_after());
            }
        }
        FailureKind::Tls
        | FailureKind::Redirect
        | FailureKind::InvalidRequest
        | FailureKind::ContentType
        | FailureKind::Encoding
        | FailureKind::TooLarge => assert_eq!(decision, Decision::Stop),
        _ => assert_eq!(decision, Decision::Retry),
    }
}

fn check_backoff(input: &mut Input<'_>) {
    let initial = Duration::from_millis(u64::from(input.u32() % 4_000_000));
    let multiplier = 1.0 + f64::from(input.byte()) / 16.0;
    let max_delay = Duration::from_millis(u64::from(input.u32()));
    let jitter = input.byte() & 1 == 1;
    let policy = RetryPolicy::default()
        .initial_delay(initial)
        .multiplier(multiplier)
        .max_delay(max_delay)
        .jitter(jitter)
        .jitter_seed(input.u64());
    let mut backoff = policy.backoff();
    let mut attempt = 0u32;
    for _ in 0..64 {
        match input.byte() % 4 {
            0 => {
                let retry = Duration::from_millis(input.u64());
                backoff.set_base(retry);
                assert!(backoff.base() <= MAX_SERVER_DELAY);
                assert_eq!(backoff.base(), retry.min(MAX_SERVER_DELAY));
            }
            1 => {
                backoff.reset();
                attempt = 0;
            }
            _ => {
                let delay = backoff.next().expect("endless");
                attempt += 1;
                let base = backoff.base();
                if attempt == 1 {
                    let extra = if jitter {
                        Duration::from_millis(200).min(base / 2)
                    } else {
                        Duration::ZERO
                    };
                    assert!(
                        delay >= base && delay <= base + extra,
                        "first delay {delay:?} for base {base:?}"
                    );
                } else {
                    let floor = [base, initial]
                        .into_iter()
                        .find(|d| !d.is_zero())
                        .unwrap_or(Duration::from_secs(1));
                    let cap = max_delay.max(floor);
                    assert!(
                        delay >= floor && delay <= cap,
                        "attempt {attempt}: {delay:?} outside [{floor:?}, {cap:?}]"
                    );
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    check_decision(&mut input);
    check_backoff(&mut input);
});

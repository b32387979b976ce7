//! The first-connection gate of a pooled client (SPEC rule 28): over TLS a
//! client learns that an origin speaks HTTP/2 only from a handshake (ALPN),
//! so streams started together on a client that has no connection yet
//! would each open a connection of their own (1,000 streams opened about
//! 900). Per client and origin, the first stream to connect *probes*; the
//! others wait (bounded by the stream) until its response head shows the
//! connection works, then share it. A connection-level failure makes the
//! origin cold again, so a mass reconnection after a server restart is
//! gated the same way. Pure bookkeeping: the stream does the waiting.

use std::collections::HashMap;
use std::task::Waker;

/// What a stream about to connect should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// A connection to the origin is known to work: connect.
    Go,
    /// Nobody is connecting: connect, and report with [`Gates::probed`].
    Probe,
    /// Another stream is probing: wait to be woken (or for the bound).
    Wait,
}

enum Gate {
    /// A stream is connecting; these wait for it.
    Probing(Vec<Waker>),
    /// A response head arrived on a connection to the origin.
    Warm,
}

/// The gates of one client, by origin (absent: cold).
#[derive(Default)]
pub(crate) struct Gates {
    by_origin: HashMap<Box<str>, Gate>,
}

impl Gates {
    /// Admits a stream to `origin`, keeping `waker` to wake when it must wait.
    pub(crate) fn admit(&mut self, origin: &str, waker: &Waker) -> Admission {
        match self.by_origin.get_mut(origin) {
            Some(Gate::Warm) => Admission::Go,
            Some(Gate::Probing(waiters)) => {
                if !waiters.iter().any(|w| w.will_wake(waker)) {
                    waiters.push(waker.clone());
                }
                Admission::Wait
            }
            None => {
                self.by_origin
                    .insert(origin.into(), Gate::Probing(Vec::new()));
                Admission::Probe
            }
        }
    }

    /// The probe ended: `ok` when a response head arrived (the origin is
    /// warm), otherwise the origin is cold again and the next stream to be
    /// admitted probes. Wakes every waiter either way.
    pub(crate) fn probed(&mut self, origin: &str, ok: bool) {
        let before = if ok {
            self.by_origin.insert(origin.into(), Gate::Warm)
        } else {
            self.by_origin.remove(origin)
        };
        if let Some(Gate::Probing(waiters)) = before {
            waiters.into_iter().for_each(Waker::wake);
        }
    }

    /// A connection to `origin` failed: the next stream probes again.
    pub(crate) fn cool(&mut self, origin: &str) {
        if matches!(self.by_origin.get(origin), Some(Gate::Warm)) {
            self.by_origin.remove(origin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::CountingWake;

    #[test]
    fn one_probe_at_a_time_then_everyone_goes() {
        let count = CountingWake::new();
        let waker = Waker::from(count.clone());
        let other = Waker::from(CountingWake::new());
        let mut g = Gates::default();
        assert_eq!(g.admit("https://a", &waker), Admission::Probe);
        assert_eq!(g.admit("https://a", &waker), Admission::Wait);
        assert_eq!(g.admit("https://a", &waker), Admission::Wait, "kept once");
        assert_eq!(g.admit("https://b", &other), Admission::Probe, "per origin");
        g.probed("https://a", true);
        assert_eq!(count.count(), 1);
        assert_eq!(g.admit("https://a", &waker), Admission::Go);
        // A failed connection: the next stream probes again.
        g.cool("https://a");
        assert_eq!(g.admit("https://a", &waker), Admission::Probe);
        assert_eq!(g.admit("https://a", &other), Admission::Wait);
        // A failed probe wakes the waiters, one of which probes next.
        g.probed("https://a", false);
        assert_eq!(count.count(), 1);
        assert_eq!(g.admit("https://a", &other), Admission::Probe);
        // Cooling while probing changes nothing.
        g.cool("https://a");
        assert_eq!(g.admit("https://a", &waker), Admission::Wait);
    }
}

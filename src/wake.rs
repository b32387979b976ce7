//! Waker identity: whether a waker kept from an earlier poll already wakes
//! the task polling now, so it need not be replaced (a clone and a drop) or
//! handed to a timer again.

use std::task::Waker;

/// Whether waking `kept` wakes the task `current` would: `will_wake`, or the
/// same non-null data pointer. `will_wake` alone misses equal wakers whose
/// vtables are two copies of one constant, as with the waker of Tokio's
/// `block_on` (what `#[tokio::main]` runs) and its clones: the idle timer
/// was then re-polled on every `Pending`, about 100 instructions each time
/// (callgrind). Two live wakers with one data pointer point at one task
/// object; a null pointer (no-op wakers) proves nothing.
pub(crate) fn same_task(kept: &Waker, current: &Waker) -> bool {
    kept.will_wake(current) || (!kept.data().is_null() && kept.data() == current.data())
}

/// Keeps `current` in `slot` unless the waker already there wakes the same
/// task; true when it was kept (the slot was empty or held another task's).
pub(crate) fn remember(slot: &mut Option<Waker>, current: &Waker) -> bool {
    if slot.as_ref().is_some_and(|kept| same_task(kept, current)) {
        return false;
    }
    *slot = Some(current.clone());
    true
}

/// A waker that counts its wakes, for unit tests of code that stores or
/// fires wakers.
#[cfg(test)]
pub(crate) struct CountingWake(pub(crate) std::sync::atomic::AtomicUsize);

#[cfg(test)]
impl CountingWake {
    pub(crate) fn new() -> std::sync::Arc<CountingWake> {
        std::sync::Arc::new(CountingWake(std::sync::atomic::AtomicUsize::new(0)))
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
impl std::task::Wake for CountingWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::{remember, same_task};
    use std::sync::Arc;
    use std::task::{RawWaker, RawWakerVTable, Wake, Waker};

    struct Task;
    impl Wake for Task {
        fn wake(self: Arc<Self>) {}
    }

    // A second vtable over the same data, as a duplicated constant gives.
    static OTHER_VTABLE: RawWakerVTable = RawWakerVTable::new(
        |data| RawWaker::new(data, &OTHER_VTABLE),
        |_| {},
        |_| {},
        |_| {},
    );

    #[allow(unsafe_code)] // building a waker by hand; test only
    fn other_vtable(data: *const ()) -> Waker {
        // SAFETY: OTHER_VTABLE's functions never read the data pointer.
        unsafe { Waker::from_raw(RawWaker::new(data, &OTHER_VTABLE)) }
    }

    #[test]
    fn a_waker_over_the_same_task_is_the_same_whatever_its_vtable() {
        let task = Arc::new(Task);
        let waker = Waker::from(task.clone());
        let other = other_vtable(Arc::as_ptr(&task).cast());
        assert!(!waker.will_wake(&other), "the case will_wake misses");
        assert!(same_task(&waker, &other));
        assert!(same_task(&waker, &waker.clone()));
        let another_task = Waker::from(Arc::new(Task));
        assert!(!same_task(&waker, &another_task));
        // No-op wakers share a null pointer and tell nothing apart.
        assert!(!same_task(&other_vtable(std::ptr::null()), Waker::noop()));
    }

    #[test]
    fn remember_replaces_only_a_waker_of_another_task() {
        let task = Arc::new(Task);
        let waker = Waker::from(task.clone());
        let mut slot = None;
        remember(&mut slot, &waker);
        assert!(slot.as_ref().is_some_and(|w| w.will_wake(&waker)));
        // The same task through another vtable: the kept waker stays.
        remember(&mut slot, &other_vtable(Arc::as_ptr(&task).cast()));
        assert!(slot.as_ref().is_some_and(|w| w.will_wake(&waker)));
        let another = Waker::from(Arc::new(Task));
        remember(&mut slot, &another);
        assert!(slot.as_ref().is_some_and(|w| w.will_wake(&another)));
    }
}

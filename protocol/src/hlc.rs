//! A hybrid logical clock: wall-clock milliseconds plus a counter.
//!
//! Events are ordered by `(Timestamp, EventId)`. A node observes every stamp in a record
//! before it appends to it, so an event always sorts after every event its author had seen,
//! whatever the node's wall clock says. The clock never reads the OS clock: `now_ms` comes
//! from the caller (the node's clock, or the simulator's virtual time).
//!
//! Deadlines are never computed from these stamps; they use the business time a person
//! entered (`Event::at_ms`), so a node with a wrong clock only disturbs ordering.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

/// One stamp of the clock.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    Reconcile,
    Hydrate,
)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch, as far as the clock can tell.
    pub wall_ms: u64,
    /// Orders stamps that share `wall_ms`.
    pub counter: u32,
}

/// A node's clock. One per node, shared by all its records.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    last: Timestamp,
}

impl Clock {
    /// A clock that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest stamp issued or observed.
    pub fn last(&self) -> Timestamp {
        self.last
    }

    /// Takes note of a stamp seen in a record or a message, so that the next stamp issued
    /// sorts after it.
    pub fn observe(&mut self, seen: Timestamp) {
        if seen > self.last {
            self.last = seen;
        }
    }

    /// Issues a stamp later than every stamp issued or observed so far.
    pub fn tick(&mut self, now_ms: u64) -> Timestamp {
        let next = if now_ms > self.last.wall_ms {
            Timestamp {
                wall_ms: now_ms,
                counter: 0,
            }
        } else {
            match self.last.counter.checked_add(1) {
                Some(counter) => Timestamp {
                    wall_ms: self.last.wall_ms,
                    counter,
                },
                // Four billion events in one millisecond cannot come from people; moving the
                // wall part on by a millisecond keeps the order strict instead of wrapping.
                None => Timestamp {
                    wall_ms: self.last.wall_ms.saturating_add(1),
                    counter: 0,
                },
            }
        };
        self.last = next;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_wall_clock_goes_back() {
        let mut c = Clock::new();
        let a = c.tick(1_000);
        let b = c.tick(900);
        let d = c.tick(1_000);
        let e = c.tick(1_001);
        assert!(a < b && b < d && d < e);
        assert_eq!(e.counter, 0);
    }

    #[test]
    fn a_tick_sorts_after_an_observed_stamp_from_the_future() {
        let mut c = Clock::new();
        let remote = Timestamp {
            wall_ms: 50_000,
            counter: 7,
        };
        c.observe(remote);
        let t = c.tick(10_000);
        assert!(t > remote);
    }

    #[test]
    fn counter_overflow_moves_the_wall_part_on() {
        let mut c = Clock::new();
        c.observe(Timestamp {
            wall_ms: 5,
            counter: u32::MAX,
        });
        let t = c.tick(5);
        assert_eq!(
            t,
            Timestamp {
                wall_ms: 6,
                counter: 0
            }
        );
    }
}

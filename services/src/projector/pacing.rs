//! When a leading projector starts a cycle of list writes.
//!
//! - **Catching up** (more than four batches behind the stream): a cycle starts once `events`
//!   were read since the previous one started, so that each coalesces that much of the history
//!   into one write per call whatever the machine's speed; or after `linger`, for a slow reader.
//! - **Live**: a cycle starts as soon as the previous one is done and something changed.
//!
//! One cycle is in flight at a time, so writes to one key, and lists published on one subject,
//! keep the order of the stream.

use std::time::Duration;

use tokio::time::Instant;

/// Where a leader stands against the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Far behind: write cycles are paced.
    CatchingUp,
    /// Close behind: every change is written at once.
    Live,
}

/// Paces write cycles by the backlog.
#[derive(Debug)]
pub(crate) struct Pacer {
    events: u64,
    linger: Duration,
    far: u64,
    backlog: u64,
    read: u64,
    last_start: Instant,
}

impl Pacer {
    /// A pacer for batches of `batch` events that, while catching up, starts a cycle every
    /// `events` events read, or after `linger`.
    pub(crate) fn new(batch: usize, events: u64, linger: Duration) -> Self {
        Self {
            events,
            linger,
            far: 4 * batch as u64,
            backlog: 0,
            read: 0,
            last_start: Instant::now(),
        }
    }

    /// Records that `n` more events were read.
    pub(crate) fn read(&mut self, n: u64) {
        self.read += n;
    }

    /// Records how many events are still to read after the last one read.
    pub(crate) fn backlog(&mut self, pending: u64) {
        self.backlog = pending;
    }

    /// The phase the backlog puts the leader in.
    pub(crate) fn phase(&self) -> Phase {
        if self.backlog > self.far {
            Phase::CatchingUp
        } else {
            Phase::Live
        }
    }

    /// When the next cycle may start, if one is wanted now: at once when live or when enough
    /// events were read, else `linger` after the previous start.
    pub(crate) fn next_start(&self) -> Instant {
        match self.phase() {
            Phase::CatchingUp if self.read < self.events => self.last_start + self.linger,
            _ => Instant::now(),
        }
    }

    /// Whether a cycle may start now.
    pub(crate) fn may_start(&self) -> bool {
        Instant::now() >= self.next_start()
    }

    /// Records that a cycle started now.
    pub(crate) fn started(&mut self) {
        self.last_start = Instant::now();
        self.read = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_millis(100);
    const EVENTS: u64 = 50_000;

    #[tokio::test(start_paused = true)]
    async fn live_cycles_start_at_once() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER);
        pacer.backlog(4000);
        assert_eq!(pacer.phase(), Phase::Live);
        pacer.started();
        assert!(pacer.may_start());
    }

    #[tokio::test(start_paused = true)]
    async fn catching_up_cycles_start_at_most_every_linger() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER);
        pacer.backlog(4001);
        assert_eq!(pacer.phase(), Phase::CatchingUp);
        pacer.started();
        let start = Instant::now();
        assert!(!pacer.may_start());
        assert_eq!(pacer.next_start(), start + LINGER);
        tokio::time::advance(LINGER - Duration::from_millis(1)).await;
        assert!(!pacer.may_start());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(pacer.may_start());
    }

    #[tokio::test(start_paused = true)]
    async fn catching_up_a_cycle_starts_once_enough_events_were_read_whatever_the_time() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER);
        pacer.backlog(900_000);
        pacer.started();
        pacer.read(EVENTS - 1);
        assert!(!pacer.may_start(), "one event short, inside the linger");
        pacer.read(1);
        assert!(pacer.may_start(), "at once, long before the linger");
        pacer.started();
        assert!(!pacer.may_start(), "the count starts again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_caught_up_leader_writes_at_once_even_inside_the_linger() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER);
        pacer.backlog(50_000);
        pacer.started();
        tokio::time::advance(LINGER / 2).await;
        assert!(!pacer.may_start());
        pacer.backlog(0);
        assert_eq!(pacer.phase(), Phase::Live);
        assert!(pacer.may_start());
    }
}

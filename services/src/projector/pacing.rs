//! When a leading projector starts a cycle of list writes.
//!
//! - **Catching up** (more than four batches behind the stream): a cycle starts once `events`
//!   were read since the previous one started, so that each coalesces that much of the history
//!   into one write per call whatever the machine's speed; or after `linger`, for a slow reader.
//! - **Live**: a cycle starts as soon as the previous one is done and something changed.
//!
//! Checkpoints follow the phase too. Live, one comes every `checkpoint_every` events or
//! `checkpoint_interval`, whichever is first, so that a successor re-reads little. Catching up,
//! one comes at the pace of write cycles (every `events` events, or `linger`), never more often
//! than live: a checkpoint writes every pending list first, so checkpointing at the live pace
//! would cut the coalescing of history short. A crash while catching up re-reads at most that
//! many events.
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

/// When a live leader checkpoints: every `every` events or `interval`, whichever is first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checkpoints {
    /// Events read between two checkpoints.
    pub(crate) every: u64,
    /// Longest time between two checkpoints while events arrive.
    pub(crate) interval: Duration,
}

/// Paces write cycles and checkpoints by the backlog.
#[derive(Debug)]
pub(crate) struct Pacer {
    events: u64,
    linger: Duration,
    checkpoints: Checkpoints,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    far: u64,
    backlog: u64,
    read: u64,
    last_start: Instant,
}

impl Pacer {
    /// A pacer for batches of `batch` events that, while catching up, starts a cycle every
    /// `events` events read, or after `linger`; live, it checkpoints as `checkpoints` says.
    pub(crate) fn new(
        batch: usize,
        events: u64,
        linger: Duration,
        checkpoints: Checkpoints,
    ) -> Self {
        Self {
            events,
            linger,
            checkpoints,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            far: 4 * batch as u64,
            backlog: 0,
            read: 0,
            last_start: Instant::now(),
        }
    }

    /// Records that `n` more events were read.
    pub(crate) fn read(&mut self, n: u64) {
        self.read += n;
        self.since_checkpoint += n;
    }

    /// Whether a checkpoint is due: events were read since the last one, and enough of them
    /// or long enough ago for the phase.
    pub(crate) fn checkpoint_due(&self) -> bool {
        let Checkpoints { every, interval } = self.checkpoints;
        let (every, interval) = match self.phase() {
            Phase::Live => (every, interval),
            Phase::CatchingUp => (every.max(self.events), interval.max(self.linger)),
        };
        self.since_checkpoint > 0
            && (self.since_checkpoint >= every || self.last_checkpoint.elapsed() >= interval)
    }

    /// Records that a checkpoint was made now.
    pub(crate) fn checkpointed(&mut self) {
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
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
    const LIVE: Checkpoints = Checkpoints {
        every: 5_000,
        interval: Duration::from_millis(50),
    };

    #[tokio::test(start_paused = true)]
    async fn live_cycles_start_at_once() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER, LIVE);
        pacer.backlog(4000);
        assert_eq!(pacer.phase(), Phase::Live);
        pacer.started();
        assert!(pacer.may_start());
    }

    #[tokio::test(start_paused = true)]
    async fn catching_up_cycles_start_at_most_every_linger() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER, LIVE);
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
        let mut pacer = Pacer::new(1000, EVENTS, LINGER, LIVE);
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
        let mut pacer = Pacer::new(1000, EVENTS, LINGER, LIVE);
        pacer.backlog(50_000);
        pacer.started();
        tokio::time::advance(LINGER / 2).await;
        assert!(!pacer.may_start());
        pacer.backlog(0);
        assert_eq!(pacer.phase(), Phase::Live);
        assert!(pacer.may_start());
    }

    #[tokio::test(start_paused = true)]
    async fn live_checkpoints_come_every_few_events_or_a_short_time() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER, LIVE);
        pacer.backlog(0);
        assert!(!pacer.checkpoint_due(), "nothing read");
        tokio::time::advance(LIVE.interval).await;
        assert!(!pacer.checkpoint_due(), "nothing read, however long");
        pacer.read(1);
        assert!(pacer.checkpoint_due(), "one event, after the interval");
        pacer.checkpointed();
        pacer.read(LIVE.every - 1);
        assert!(!pacer.checkpoint_due());
        pacer.read(1);
        assert!(pacer.checkpoint_due(), "enough events, inside the interval");
    }

    #[tokio::test(start_paused = true)]
    async fn catching_up_checkpoints_come_at_the_pace_of_write_cycles() {
        let mut pacer = Pacer::new(1000, EVENTS, LINGER, LIVE);
        pacer.backlog(900_000);
        pacer.read(EVENTS - 1);
        tokio::time::advance(LINGER - Duration::from_millis(1)).await;
        assert!(
            !pacer.checkpoint_due(),
            "past the live pace, short of the catch-up one"
        );
        pacer.read(1);
        assert!(pacer.checkpoint_due(), "a cycle's worth of events");
        pacer.checkpointed();
        pacer.read(1);
        tokio::time::advance(LINGER).await;
        assert!(pacer.checkpoint_due(), "a slow reader, after the linger");
        pacer.checkpointed();
        pacer.read(1);
        pacer.backlog(0);
        assert!(
            !pacer.checkpoint_due(),
            "caught up, inside the live interval"
        );
        tokio::time::advance(LIVE.interval).await;
        assert!(pacer.checkpoint_due());
    }
}

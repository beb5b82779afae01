//! How the site services run. Built by the binary from flags; libraries never read the
//! environment.

use std::time::Duration;

use ledger_replay::ReadAhead;

use crate::StoreConfig;

/// The largest batch: it sizes the projector's buffer of decoded events.
pub const MAX_BATCH: usize = 100_000;

/// Settings of the site services: the projector, and what the command service shares with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Streams and buckets (replicas, age limit).
    pub store: StoreConfig,
    /// Most events read and folded at once; their list writes are coalesced per call.
    /// Default 1,000; held to 1 to [`MAX_BATCH`] where used ([`Config::batch_size`]).
    pub batch: usize,
    /// How far ahead of its fold a projector or a command service lets the server send events
    /// (the window of each pull request of its [`ledger_replay::EventFeed`]; one and a half
    /// windows at most are on their way). Default 20,000 events or 8 MiB.
    pub read_ahead: ReadAhead,
    /// Events handled between two checkpoints (index and floor written) once caught up.
    /// Default 50,000. After a crash, at most this many events (or `checkpoint_interval` of
    /// them) are read again, and recognised as already handled where they were. While catching
    /// up, checkpoints come at the pace of write cycles instead (`catch_up_events`,
    /// `catch_up_linger`), since each writes every pending list first.
    pub checkpoint_every: usize,
    /// Longest time between two checkpoints while events arrive, once caught up. Default
    /// 500 ms.
    pub checkpoint_interval: Duration,
    /// While the projector is more than four batches behind the stream (catching up on history),
    /// a cycle of LCTParty list writes starts once this many events were read since the last
    /// one began, so that each coalesces many events into one write per call, however fast the
    /// machine reads: writes per event stay at most the calls in progress divided by this. Once
    /// caught up, every batch's changes are written at once. Checkpoints keep the same pace
    /// while catching up, so a crash then re-reads at most this many events. Default 200,000.
    pub catch_up_events: u64,
    /// While catching up, the longest time between two write cycles (and checkpoints), for a
    /// slow reader. Default 2 s.
    pub catch_up_linger: Duration,
    /// How long a site's projector lease lives without renewal, in whole seconds (at least
    /// one; the server's per-message time-to-live counts seconds). A standby takes over at most
    /// this long after the leader stopped renewing (a crash, a pause, a cut connection); a clean
    /// stop hands over at once. Default 10 s.
    pub lease_ttl: Duration,
    /// Ended calls remembered per site, to recognise events that arrive after a call ended and
    /// resent requests of ended calls. The oldest is forgotten first. Default 10,000.
    pub ended_calls_kept: usize,
    /// How often the counters are logged while they change. Default 30 s.
    pub log_interval: Duration,
    /// Run each site's projector. Default true.
    pub projector: bool,
    /// Run each site's command service. Default true.
    pub commands: bool,
    /// Run each site's statistics projection ([`crate::stats`]). Default true.
    pub stats: bool,
    /// Attempts of a TDeleteFromConference append that lose the optimistic-concurrency race
    /// before the request is answered `conflict`. Default 3.
    pub max_attempts: u32,
    /// Create the streams and buckets when absent (and bring their settings up to date). When
    /// false they must exist, created by an operator, and the services need no right to create,
    /// change or delete them. Default true.
    pub provision: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: StoreConfig::default(),
            batch: 1_000,
            read_ahead: ReadAhead::default(),
            checkpoint_every: 50_000,
            checkpoint_interval: Duration::from_millis(500),
            catch_up_events: 200_000,
            catch_up_linger: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(10),
            ended_calls_kept: 10_000,
            log_interval: Duration::from_secs(30),
            projector: true,
            commands: true,
            stats: true,
            max_attempts: 3,
            provision: true,
        }
    }
}

impl Config {
    /// Sets the batch size (1 to [`MAX_BATCH`]).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.clamp(1, MAX_BATCH);
        self
    }

    /// The batch size in force: [`Config::batch`] held to 1 to [`MAX_BATCH`].
    pub fn batch_size(&self) -> usize {
        self.batch.clamp(1, MAX_BATCH)
    }

    /// Sets how many events pass between two checkpoints (at least one).
    pub fn checkpoint_every(mut self, events: usize) -> Self {
        self.checkpoint_every = events.max(1);
        self
    }

    /// Sets [`Config::provision`].
    pub fn provision(mut self, provision: bool) -> Self {
        self.provision = provision;
        self
    }

    /// Sets the lease time-to-live, rounded up to whole seconds (at least one).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = whole_seconds(ttl);
        self
    }

    /// Sets the stream and bucket settings.
    pub fn store(mut self, store: StoreConfig) -> Self {
        self.store = store;
        self
    }
}

/// `d` rounded up to whole seconds, at least one: the server counts times-to-live in seconds.
pub(crate) fn whole_seconds(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_the_server_counts_in_seconds_are_rounded_up() {
        let c = Config::default().lease_ttl(Duration::from_millis(1500));
        assert_eq!(c.lease_ttl, Duration::from_secs(2));
        let c = Config::default().lease_ttl(Duration::ZERO);
        assert_eq!(c.lease_ttl, Duration::from_secs(1));
    }

    #[test]
    fn a_batch_is_held_to_its_bounds() {
        assert_eq!(Config::default().batch(0).batch, 1);
        assert_eq!(Config::default().batch(usize::MAX).batch, MAX_BATCH);
        let c = Config {
            batch: usize::MAX,
            ..Config::default()
        };
        assert_eq!(c.batch_size(), MAX_BATCH);
    }
}

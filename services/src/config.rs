//! How the site services run. Built by the binary from flags; libraries never read the
//! environment.

use std::time::Duration;

use crate::StoreConfig;

/// Settings of the site services (projector now; the command service shares them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Streams and buckets (replicas, age limit).
    pub store: StoreConfig,
    /// Most events handled between two acknowledgements; the KV writes of a batch are coalesced
    /// per call. Default 1,000.
    pub batch: usize,
    /// Events handled between two checkpoints (index flush and acknowledgement). Default
    /// 50,000. After a crash, at most this many events (or `ack_interval` of them) are
    /// delivered again, and recognised as already handled where they were.
    pub ack_every: usize,
    /// Longest time between two checkpoints while events arrive. Default 500 ms.
    pub ack_interval: Duration,
    /// While the projector is more than four batches behind the stream (catching up on history),
    /// LCTParty list writes start at most this often, so that each coalesces more events; once
    /// caught up, every batch's changes are written at once. Default 100 ms: a list lags at most
    /// that much more while the projector catches up.
    pub catch_up_linger: Duration,
    /// Unacknowledged events the server lets the projector hold; kept above
    /// `ack_every + 2 * batch`. Default 60,000.
    pub max_ack_pending: i64,
    /// How long a site's projector lease lives without renewal. A second instance of the same
    /// site waits on standby and takes over when the lease is this old (after a crash or
    /// `kill -9` of the leader; a clean stop hands over at once). Default 10 s.
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
    /// Attempts of a TDeleteFromConference append that lose the optimistic-concurrency race
    /// before the request is answered `conflict`. Default 3.
    pub max_attempts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: StoreConfig::default(),
            batch: 1_000,
            ack_every: 50_000,
            ack_interval: Duration::from_millis(500),
            catch_up_linger: Duration::from_millis(100),
            max_ack_pending: 60_000,
            lease_ttl: Duration::from_secs(10),
            ended_calls_kept: 10_000,
            log_interval: Duration::from_secs(30),
            projector: true,
            commands: true,
            max_attempts: 3,
        }
    }
}

impl Config {
    /// Sets the batch size.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self.fit_ack_pending()
    }

    /// Sets how many events pass between two checkpoints.
    pub fn ack_every(mut self, events: usize) -> Self {
        self.ack_every = events.max(1);
        self.fit_ack_pending()
    }

    fn fit_ack_pending(mut self) -> Self {
        let needed = (self.ack_every + 2 * self.batch) as i64;
        self.max_ack_pending = self.max_ack_pending.max(needed);
        self
    }

    /// Sets the lease time-to-live.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets the stream and bucket settings.
    pub fn store(mut self, store: StoreConfig) -> Self {
        self.store = store;
        self
    }
}

//! Counters of a site's projector, logged and served on `ledger.status.<site>`.

use serde::Serialize;

/// What a site's projector has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counters {
    /// Events applied to the fold.
    pub applied: u64,
    /// Events read again at a position already handled (redeliveries, replays): not applied.
    pub redelivered: u64,
    /// Events that decoded but made no sense for the state (second join, unknown party, ...).
    pub anomalies: u64,
    /// Messages that could not be decoded or disagreed with their subject.
    pub undecodable: u64,
    /// LCTParty lists written and published.
    pub lists_published: u64,
    /// Calls whose view emptied (key deleted, last empty list published).
    pub lists_ended: u64,
    /// Calls re-folded from the stream when this instance took over.
    pub recovered_calls: u64,
    /// Calls in progress now (ended calls that are still remembered are not counted).
    pub active_calls: u64,
    /// Batches handled (events between two acknowledgements): `applied / batches` is the
    /// coalescing achieved.
    pub batches: u64,
    /// Stream sequence of the last event handled.
    pub last_seq: u64,
    /// Stream sequence up to which every list write is confirmed in KV and published: the
    /// site's lists are current as of this event. Trails `last_seq` while writes are in flight.
    #[serde(default)]
    pub written_seq: u64,
    /// Fenced writes refused because another instance had written the key since: a replaced
    /// leader's late writes, seen by its successor, or this instance's own after it was replaced.
    #[serde(default)]
    pub writes_refused: u64,
    /// Option changes this leader put on the audit record.
    #[serde(default)]
    pub options_recorded: u64,
    /// TDeleteFromConference requests this process's command service accepted.
    #[serde(default)]
    pub deletes_accepted: u64,
    /// TDeleteFromConference requests this process's command service refused (every code).
    #[serde(default)]
    pub deletes_refused: u64,
}

impl Counters {
    /// Events that were read but not applied.
    pub fn skipped(&self) -> u64 {
        self.redelivered + self.anomalies + self.undecodable
    }
}

/// What an instance does for a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the lease and projects.
    Leader,
    /// Waits for the lease.
    Standby,
    /// Shutting down.
    Stopping,
    /// The process serves only the site's commands (no projector).
    Commands,
}

/// A site's role and counters, as `ledger.status.<site>` answers (JSON).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Status {
    /// The site.
    pub site: String,
    /// `leader` (projecting), `standby` (waiting for the lease), `stopping`, or `commands` (a
    /// process serving only the site's commands).
    pub role: Role,
    /// This instance's id (the lease holder's id when leader).
    pub instance: String,
    /// The counters.
    pub counters: Counters,
}

/// Every answer to a site's status request (`ledger.status.<site>`) within `within`: one per
/// process serving the site. Empty when none answers or NATS cannot be reached.
pub async fn statuses(
    client: &async_nats::Client,
    site: ledger_schemas::Site,
    within: std::time::Duration,
) -> Vec<Status> {
    use futures::StreamExt;
    let inbox = client.new_inbox();
    let Ok(mut sub) = client.subscribe(inbox.clone()).await else {
        return Vec::new();
    };
    if client
        .publish_with_reply(crate::status_subject(site), inbox, "".into())
        .await
        .is_err()
    {
        return Vec::new();
    }
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        if let Ok(s) = serde_json::from_slice::<Status>(&msg.payload) {
            all.push(s);
        }
    }
    all
}

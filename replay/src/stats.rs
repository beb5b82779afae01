//! Statistics from history: the core's [`Stats`] fold fed from `LEDGER_EVENTS` and
//! `LEDGER_AUDIT` a page at a time ([`StatsReader`], used by the live projection and by a
//! recount alike), and the figures the live projection stored ([`stored_figures`]).

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
    stream::Stream,
};
use futures::StreamExt;
use futures::stream::ReadyChunks;
use ledger_core::stats::Stats;
use ledger_schemas::{CallNow, Figures, Message, STATS_BUCKET, Site, SiteNow, StatsKey, subject};

use crate::{History, ReadError, events_filter};

/// Messages read from a stream at once, at most.
pub const PAGE: u64 = 5_000;

/// The stream behind the statistics bucket.
const STATS_STREAM: &str = "KV_LEDGER_STATS";

/// Reads both streams into a [`Stats`] fold with ordered consumers of its own (no
/// acknowledgements), a page at a time, from where it stopped.
pub struct StatsReader {
    events: Cursor,
    audit: Cursor,
}

impl std::fmt::Debug for StatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsReader")
            .field("events", &self.events.next)
            .field("audit", &self.audit.next)
            .finish()
    }
}

struct Cursor {
    stream: Stream,
    name: &'static str,
    filter: String,
    chunks: Option<ReadyChunks<pull::Ordered>>,
    /// The next stream sequence to read.
    next: u64,
    /// Nothing matching was pending when last delivered (or when the consumer was made).
    caught_up: bool,
}

impl Cursor {
    fn new(stream: Stream, name: &'static str, filter: String) -> Self {
        Self {
            stream,
            name,
            filter,
            chunks: None,
            next: 1,
            caught_up: false,
        }
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> ReadError {
        ReadError::Unavailable {
            stream: self.name,
            reason: e.to_string(),
        }
    }

    /// What has arrived, waiting for the first message at most `idle` when nothing was
    /// pending, else at most [`LONG`].
    async fn page(&mut self, idle: Duration) -> Result<Vec<jetstream::Message>, ReadError> {
        if self.chunks.is_none() {
            let consumer = self
                .stream
                .create_consumer(pull::OrderedConfig {
                    filter_subject: self.filter.clone(),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: self.next,
                    },
                    max_batch: PAGE as i64,
                    ..Default::default()
                })
                .await
                .map_err(|e| self.unavailable(e))?;
            self.caught_up = consumer.cached_info().num_pending == 0;
            let messages = consumer.messages().await.map_err(|e| self.unavailable(e))?;
            self.chunks = Some(messages.ready_chunks(PAGE as usize));
        }
        let wait = if self.caught_up { idle } else { LONG };
        let Some(chunks) = self.chunks.as_mut() else {
            return Ok(Vec::new());
        };
        let chunk = match tokio::time::timeout(wait, chunks.next()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => {
                self.chunks = None;
                return Err(self.unavailable("the consumer ended"));
            }
            Ok(Some(chunk)) => chunk,
        };
        let mut page = Vec::with_capacity(chunk.len());
        for m in chunk {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    // The ordered consumer is made again from where this one stopped.
                    self.chunks = None;
                    return if page.is_empty() {
                        Err(self.unavailable(e))
                    } else {
                        Ok(page)
                    };
                }
            };
            let Ok(info) = m.info() else {
                return Err(self.unavailable("a message without its stream sequence"));
            };
            self.next = info.stream_sequence + 1;
            self.caught_up = info.pending == 0;
            page.push(m);
        }
        Ok(page)
    }
}

impl StatsReader {
    /// A reader from the start of both streams. With `site`, only that site's audit records
    /// are read (its refusals): enough for that site's figures.
    pub fn new(events: Stream, audit: Stream, site: Option<Site>) -> Self {
        let audit_filter = site.map_or_else(
            || subject::AUDIT_SUBJECTS.to_owned(),
            |s| format!("ledger.audit.{s}.>"),
        );
        Self {
            events: {
                let filter = events_filter(&events.cached_info().config);
                Cursor::new(events, subject::EVENTS_STREAM, filter)
            },
            audit: Cursor::new(audit, subject::AUDIT_STREAM, audit_filter),
        }
    }

    /// How far each stream reaches now: `(events, audit)` last sequences.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when a stream cannot be reached.
    pub async fn ends(&mut self) -> Result<(u64, u64), ReadError> {
        let mut ends = [0; 2];
        for (c, end) in [&mut self.events, &mut self.audit]
            .into_iter()
            .zip(&mut ends)
        {
            let name = c.name;
            let info = c.stream.info().await.map_err(|e| ReadError::Unavailable {
                stream: name,
                reason: e.to_string(),
            })?;
            *end = info.state.last_sequence;
        }
        Ok((ends[0], ends[1]))
    }

    /// The next sequences to read: `(events, audit)`.
    pub fn position(&self) -> (u64, u64) {
        (self.events.next, self.audit.next)
    }

    /// Whether both streams were read to the end as it was when their last message came.
    pub fn caught_up(&self) -> bool {
        self.events.caught_up && self.audit.caught_up
    }

    /// Reads what has arrived of each stream (at most a page each, waiting at most `wait` for
    /// a stream with nothing pending) into `stats`; returns how many messages it read.
    ///
    /// # Errors
    ///
    /// [`ReadError`] when a stream cannot be read.
    pub async fn read_page(&mut self, stats: &mut Stats, wait: Duration) -> Result<u64, ReadError> {
        let mut read = 0;
        for m in self.events.page(wait).await? {
            stats.ingest_event(
                m.info().map_or(0, |i| i.stream_sequence),
                &m.subject,
                &m.payload,
            );
            read += 1;
        }
        for m in self.audit.page(Duration::ZERO).await? {
            stats.ingest_audit(
                m.info().map_or(0, |i| i.stream_sequence),
                &m.subject,
                &m.payload,
            );
            read += 1;
        }
        Ok(read)
    }
}

/// How long to wait for a stream that has messages pending.
const LONG: Duration = Duration::from_secs(5);

/// Recounts every figure from the start of both streams up to where they reach when it starts
/// (or a little past, when more came meanwhile), calling
/// `progress` with the messages read so far and the total.
///
/// # Errors
///
/// [`ReadError`] when a stream cannot be read.
pub async fn recount(
    events: Stream,
    audit: Stream,
    mut progress: impl FnMut(u64, u64),
) -> Result<Stats, ReadError> {
    let mut reader = StatsReader::new(events, audit, None);
    let (events_end, audit_end) = reader.ends().await?;
    let total = events_end + audit_end;
    let mut stats = Stats::new();
    let mut done = 0;
    loop {
        let read = reader.read_page(&mut stats, Duration::ZERO).await?;
        done += read;
        progress(done.min(total), total);
        let (e, a) = reader.position();
        if (reader.caught_up() && read == 0) || (e > events_end && a > audit_end) {
            break;
        }
    }
    Ok(stats)
}

/// The figures the live projection stored for `site` (every site when `None`), in key order.
/// Values that do not decode are skipped and counted in the second value.
///
/// # Errors
///
/// [`ReadError`] when the bucket cannot be read.
pub async fn stored_figures(
    history: &History,
    site: Option<Site>,
) -> Result<(Vec<Figures>, u64), ReadError> {
    let filter = match site {
        Some(s) => format!("$KV.{STATS_BUCKET}.{s}.fig.>"),
        None => format!("$KV.{STATS_BUCKET}.*.fig.>"),
    };
    let stored = history
        .read_filtered(STATS_STREAM, &filter, 1, None)
        .await?;
    let mut figures = Vec::with_capacity(stored.len());
    let mut bad = 0;
    for m in stored {
        let key = m
            .subject
            .strip_prefix(&format!("$KV.{STATS_BUCKET}."))
            .and_then(|k| StatsKey::parse(k).ok());
        match (key, Figures::decode(&m.payload)) {
            (Some(StatsKey::Figures(site, start)), Ok(f)) if f.site == site && f.start == start => {
                figures.push(f);
            }
            _ => bad += 1,
        }
    }
    figures.sort_by_key(|f| (f.site, f.start));
    Ok((figures, bad))
}

/// The real-time state the live projection stored for `site` (every site when `None`): each
/// site's calls in progress, and each call in progress with who observes it. Deleted keys
/// (calls no longer in progress) are left out.
///
/// # Errors
///
/// [`ReadError`] when the bucket cannot be read.
pub async fn stored_now(
    history: &History,
    site: Option<Site>,
) -> Result<(Vec<SiteNow>, Vec<CallNow>), ReadError> {
    let token = site.map_or_else(|| "*".to_owned(), |s| s.to_string());
    let sites = history
        .read_filtered(
            STATS_STREAM,
            &format!("$KV.{STATS_BUCKET}.{token}.now"),
            1,
            None,
        )
        .await?;
    let calls = history
        .read_filtered(
            STATS_STREAM,
            &format!("$KV.{STATS_BUCKET}.{token}.call.>"),
            1,
            None,
        )
        .await?;
    let mut sites: Vec<SiteNow> = sites
        .iter()
        .filter_map(|m| SiteNow::decode(&m.payload).ok())
        .collect();
    sites.sort_by_key(|s| s.site);
    let mut calls: Vec<CallNow> = calls
        .iter()
        .filter(|m| !m.payload.is_empty())
        .filter_map(|m| CallNow::decode(&m.payload).ok())
        .filter(|c| !c.ended)
        .collect();
    calls.sort_by_key(|c| (c.site, c.seq));
    Ok((sites, calls))
}

//! Statistics from history: the core's [`Stats`] fold fed from `LEDGER_EVENTS` and
//! `LEDGER_AUDIT` a page at a time ([`StatsReader`], used by the live projection and by a
//! recount alike), and the figures the live projection stored ([`stored_figures`]).

use async_nats::jetstream::stream::Stream;
use ledger_core::stats::Stats;
use ledger_schemas::{Figures, Message, STATS_BUCKET, Site, StatsKey, subject};

use crate::{History, ReadError};

/// Messages read from a stream at once, at most.
pub const PAGE: u64 = 5_000;

/// The stream behind the statistics bucket.
const STATS_STREAM: &str = "KV_LEDGER_STATS";

/// Reads both streams into a [`Stats`] fold, a page at a time, from where it stopped.
#[derive(Debug)]
pub struct StatsReader {
    history: History,
    events: Cursor,
    audit: Cursor,
}

#[derive(Debug)]
struct Cursor {
    stream: Stream,
    name: &'static str,
    filter: String,
    next: u64,
    last_known: u64,
}

impl Cursor {
    /// The next range to read, after asking the stream how far it reaches when needed.
    async fn range(&mut self) -> Result<Option<(u64, u64)>, ReadError> {
        if self.next > self.last_known {
            let info = self
                .stream
                .info()
                .await
                .map_err(|e| ReadError::Unavailable {
                    stream: self.name,
                    reason: e.to_string(),
                })?;
            self.last_known = info.state.last_sequence;
            if self.next < info.state.first_sequence {
                self.next = info.state.first_sequence;
            }
        }
        if self.next > self.last_known {
            return Ok(None);
        }
        Ok(Some((self.next, self.last_known.min(self.next + PAGE - 1))))
    }
}

impl StatsReader {
    /// A reader from the start of both streams. With `site`, only that site's audit records
    /// are read (its refusals): enough for that site's figures.
    pub fn new(history: History, events: Stream, audit: Stream, site: Option<Site>) -> Self {
        let audit_filter = site.map_or_else(
            || subject::AUDIT_SUBJECTS.to_owned(),
            |s| format!("ledger.audit.{s}.>"),
        );
        Self {
            history,
            events: Cursor {
                stream: events,
                name: subject::EVENTS_STREAM,
                filter: subject::EVENTS_SUBJECTS.to_owned(),
                next: 1,
                last_known: 0,
            },
            audit: Cursor {
                stream: audit,
                name: subject::AUDIT_STREAM,
                filter: audit_filter,
                next: 1,
                last_known: 0,
            },
        }
    }

    /// How far each stream reached when last asked: `(events, audit)`.
    pub async fn ends(&mut self) -> Result<(u64, u64), ReadError> {
        for c in [&mut self.events, &mut self.audit] {
            let info = c.stream.info().await.map_err(|e| ReadError::Unavailable {
                stream: c.name,
                reason: e.to_string(),
            })?;
            c.last_known = info.state.last_sequence;
        }
        Ok((self.events.last_known, self.audit.last_known))
    }

    /// The next sequences to read: `(events, audit)`.
    pub fn position(&self) -> (u64, u64) {
        (self.events.next, self.audit.next)
    }

    /// Reads at most a page of each stream into `stats`; returns how many messages it read
    /// (0: both are read to their end).
    ///
    /// # Errors
    ///
    /// [`ReadError`] when a stream cannot be read.
    pub async fn read_page(&mut self, stats: &mut Stats) -> Result<u64, ReadError> {
        let mut read = 0;
        if let Some((from, to)) = self.events.range().await? {
            let page = self
                .history
                .read_filtered(self.events.name, &self.events.filter, from, Some(to))
                .await?;
            for m in &page {
                stats.ingest_event(m.seq, &m.subject, &m.payload);
            }
            read += page.len() as u64;
            self.events.next = to + 1;
        }
        if let Some((from, to)) = self.audit.range().await? {
            let page = self
                .history
                .read_filtered(self.audit.name, &self.audit.filter, from, Some(to))
                .await?;
            for m in &page {
                stats.ingest_audit(m.seq, &m.subject, &m.payload);
            }
            read += page.len() as u64;
            self.audit.next = to + 1;
        }
        Ok(read)
    }
}

/// Recounts every figure from the start of both streams up to where they reach now, calling
/// `progress` with the messages read so far.
///
/// # Errors
///
/// [`ReadError`] when a stream cannot be read.
pub async fn recount(
    history: History,
    events: Stream,
    audit: Stream,
    mut progress: impl FnMut(u64, u64),
) -> Result<Stats, ReadError> {
    let mut reader = StatsReader::new(history, events, audit, None);
    let (events_end, audit_end) = reader.ends().await?;
    let total = events_end + audit_end;
    let mut stats = Stats::new();
    let mut done = 0;
    loop {
        let (e, a) = reader.position();
        if e > events_end && a > audit_end {
            break;
        }
        let read = reader.read_page(&mut stats).await?;
        done += read;
        progress(done.min(total), total);
        if read == 0 && reader.position() == (e, a) {
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

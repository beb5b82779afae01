//! A leading projector: reads the stream after the floor, folds it, writes the lists (fenced),
//! checkpoints, and records option changes, until it stops, is deposed, or fails.
//!
//! Its loop waits for the first of these, in this order of precedence, and hands each to a
//! method of its own:
//!
//! - shutdown: a last checkpoint, then the lease is released ([`Leader::run`]);
//! - the lease's standing lost or run out: deposed, it stops at once and writes nothing more;
//! - a cycle of list writes done ([`Leader::on_written`]): the next cycle starts, with
//!   everything folded meanwhile;
//! - an option change ([`Leader::on_option_change`]): recorded, then applied to the view;
//! - the pacer's time for a write cycle ([`Leader::start_writes`]), catching up or live
//!   ([`Phase`]);
//! - a batch of events ([`Leader::on_events`]);
//! - the checkpoint timer ([`Leader::checkpoint`]).
//!
//! **A refused write.** Every write expects the revision this leader last knew. A refusal means
//! another instance wrote the key since. If the lease still names this instance, no other
//! instance leads, so the write was a replaced leader's, landing late (it was paused or cut
//! off with writes in flight); this leader reads the key back and goes on, comparing with what
//! it found: a list is only written once the fold has read as far as the list found. If the
//! lease names another instance, this one was replaced: it stops leading at once.

use ledger_core::Ingested;
use ledger_schemas::{Site, subject};
use tokio::sync::watch;
use uuid::Uuid;

use super::feed::{Feed, Item};
use super::lists::{Found, IndexWrite, Lists};
use super::option_log::{OptionLog, Recorded};
use super::pacing::{Checkpoints, Pacer, Phase};
use super::takeover::{Ready, found};
use super::writer::{Writer, Writing, Written};
use super::{ProjectorError, SiteContext};
use crate::lease::{Keeper, Lease, Standing};
use crate::site::floor::{Floor, read_floor};
use crate::site::index::index_key;
use crate::site::keys::latest_one;
use crate::status::Role as StatusRole;

/// How leading ended.
pub(super) enum Ended {
    /// Shut down cleanly: everything read is checkpointed and the lease released.
    Stopped,
    /// The lease was lost or ran out: another instance may lead now.
    Deposed,
    /// NATS failed: the lease was given up.
    Failed(ProjectorError),
}

/// Why a step of leading cannot go on.
enum Stop {
    Deposed,
    Failed(ProjectorError),
}

impl From<ProjectorError> for Stop {
    fn from(e: ProjectorError) -> Self {
        Self::Failed(e)
    }
}

impl From<crate::lease::LeaseError> for Stop {
    fn from(e: crate::lease::LeaseError) -> Self {
        Self::Failed(e.into())
    }
}

/// A site's leading projector.
pub(super) struct Leader {
    ctx: SiteContext,
    instance: Uuid,
    keeper: Option<Keeper>,
    standing: watch::Receiver<Standing>,
    writer: Writer,
    writing: Option<Writing>,
    lists: Lists,
    /// The floor as last written.
    floor: Floor,
    /// Every list write up to this stream sequence is confirmed.
    written: u64,
    options: OptionLog,
    feed: Feed,
    /// The batch in hand, its buffer reused.
    inbox: Vec<Item>,
    pacer: Pacer,
}

impl Leader {
    /// A leader ready to run.
    pub(super) fn new(
        ctx: &SiteContext,
        instance: Uuid,
        keeper: Keeper,
        writer: Writer,
        ready: Ready,
    ) -> Self {
        Self {
            ctx: ctx.clone(),
            instance,
            standing: keeper.standing(),
            keeper: Some(keeper),
            writer,
            writing: None,
            written: ready.floor.seq,
            floor: ready.floor,
            lists: ready.lists,
            options: ready.options,
            feed: ready.feed,
            inbox: Vec::with_capacity(ctx.config.batch_size()),
            pacer: Pacer::new(
                ctx.config.batch_size(),
                ctx.config.catch_up_events,
                ctx.config.catch_up_linger,
                Checkpoints {
                    every: ctx.config.checkpoint_every as u64,
                    interval: ctx.config.checkpoint_interval,
                },
            ),
        }
    }

    fn site(&self) -> Site {
        self.ctx.site
    }

    /// Leads until shutdown, deposition or failure.
    pub(super) async fn run(mut self, shutdown: &mut watch::Receiver<bool>) -> Ended {
        tracing::info!(site = %self.site(), instance = %self.instance, floor = self.floor.seq, "projecting this site");
        let outcome = self.lead(shutdown).await;
        // Whatever happened, no write of this leader goes on.
        self.writing = None;
        let keeper = self.keeper.take();
        match outcome {
            Ok(()) => {
                self.publish_status(StatusRole::Stopping);
                self.log_counters();
                if let Some(k) = keeper {
                    k.release().await;
                }
                Ended::Stopped
            }
            Err(Stop::Deposed) => Ended::Deposed,
            Err(Stop::Failed(e)) => {
                if let Some(k) = keeper {
                    k.release().await;
                }
                Ended::Failed(e)
            }
        }
    }

    async fn lead(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), Stop> {
        let mut checkpoints = tokio::time::interval(self.ctx.config.checkpoint_interval);
        let mut logs = tokio::time::interval(self.ctx.config.log_interval);
        logs.tick().await;
        let mut logged = self.lists.counters();
        self.publish_status(StatusRole::Leader);
        loop {
            let pace = self.pacer.next_start();
            let may_write = self.writing.is_none() && self.lists.has_pending_writes();
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    self.checkpoint().await?;
                    return Ok(());
                }
                changed = self.standing.changed() => {
                    if changed.is_err() || self.standing.borrow().lost {
                        return Err(Stop::Deposed);
                    }
                }
                done = finish(&mut self.writing) => self.on_written(done).await?,
                change = self.options.next() => self.on_option_change(change).await?,
                _ = tokio::time::sleep_until(pace), if may_write => self.start_writes(),
                more = self.feed.next_batch(&mut self.inbox) => self.on_events(more).await?,
                _ = checkpoints.tick() => {
                    if self.pacer.checkpoint_due() {
                        self.checkpoint().await?;
                    }
                }
                _ = logs.tick() => {
                    let now = self.lists.counters();
                    if now != logged {
                        self.log_counters();
                        logged = now;
                    }
                }
            }
            self.publish_status(StatusRole::Leader);
        }
    }

    /// Folds a batch of events, then checkpoints or starts a write cycle as the pace allows.
    async fn on_events(&mut self, more: bool) -> Result<(), Stop> {
        if !more {
            return Err(ProjectorError::unavailable("reading events")(
                "the event stream ended".into(),
            )
            .into());
        }
        let options = self.options.options();
        let mut inbox = std::mem::take(&mut self.inbox);
        for item in inbox.drain(..) {
            let event = item.map_err(ProjectorError::unavailable("reading events"))?;
            let seq = event.seq;
            self.pacer.backlog(event.pending);
            self.pacer.read(1);
            if event.pending == 0 {
                self.lists.caught_up();
            }
            let outcome = self.lists.ingest(seq, event.event, &options);
            report(self.site(), seq, outcome);
        }
        self.inbox = inbox;
        self.lists.count_batch();
        if self.pacer.checkpoint_due() {
            self.checkpoint().await?;
        } else if self.writing.is_none() && self.pacer.may_start() {
            self.start_writes();
        }
        Ok(())
    }

    /// Starts a cycle writing the latest list of every call that changed; or, with nothing to
    /// write, notes that the lists are current.
    fn start_writes(&mut self) {
        if !self.standing.borrow().may_write() {
            // The standing branch deposes this leader next.
            return;
        }
        let through = self.lists.last_seq();
        let options = self.options.options();
        let writes = self.lists.list_writes(&options);
        self.pacer.started();
        if writes.is_empty() {
            if !self.lists.holding() {
                self.written = self.written.max(through);
            }
            return;
        }
        self.writing = Some(self.writer.start(writes, through));
    }

    /// A cycle of list writes ended: takes note of the revisions, reads back refused keys, and
    /// starts the next cycle with everything folded meanwhile.
    async fn on_written(
        &mut self,
        done: Result<Vec<(Uuid, Written)>, ProjectorError>,
    ) -> Result<(), Stop> {
        let through = self.writing.take().map_or(0, |w| w.through);
        self.settled(done?, through).await?;
        if self.pacer.may_start() && self.lists.has_pending_writes() {
            self.start_writes();
        }
        Ok(())
    }

    async fn settled(&mut self, outcomes: Vec<(Uuid, Written)>, through: u64) -> Result<(), Stop> {
        let mut refused = Vec::new();
        for (call, outcome) in outcomes {
            match outcome {
                Written::Stored(revision) => self.lists.list_written(call, revision),
                Written::Refused => refused.push(call),
            }
        }
        if refused.is_empty() {
            self.written = self.written.max(through);
            return Ok(());
        }
        still_leading(&self.ctx, self.instance).await?;
        for call in refused {
            let key = subject::lct_key(self.site(), call);
            let stored = latest_one(&self.ctx.stores.lct, &key)
                .await
                .map_err(ProjectorError::unavailable("reading back a list"))?;
            let found = stored.map_or(
                Found {
                    revision: 0,
                    list: None,
                },
                |k| found(&self.ctx, call, &k),
            );
            self.lists.list_refused(call, found);
        }
        tracing::info!(site = %self.site(), "a replaced leader's late list writes were found; compared with");
        Ok(())
    }

    /// Records an option change, then applies it to the view.
    async fn on_option_change(
        &mut self,
        change: Option<
            Result<crate::site::keys::StoredKey, async_nats::jetstream::kv::WatcherError>,
        >,
    ) -> Result<(), Stop> {
        let change = match change {
            Some(Ok(change)) => change,
            Some(Err(e)) => {
                return Err(ProjectorError::unavailable("watching the options")(e.into()).into());
            }
            None => {
                return Err(ProjectorError::unavailable("watching the options")(
                    "the watch ended".into(),
                )
                .into());
            }
        };
        if !self.standing.borrow().may_write() {
            return Err(Stop::Deposed);
        }
        match self.options.record(&change).await? {
            Recorded::Changed(_) => {
                self.lists.count_option_recorded();
                // The view is re-derived from the fold of every event read, which equals
                // re-folding the log under the new settings.
                self.lists.mark_all_dirty();
            }
            Recorded::Same => self.lists.count_option_recorded(),
            Recorded::Ignored => {}
        }
        Ok(())
    }

    /// Checkpointing: makes everything read so far durable, in this order: the list writes in
    /// flight settle; the calls in progress (or with a list still to write) that the index does
    /// not hold are recorded; the floor moves to the last event read; the calls done with are
    /// removed from the index; ended calls beyond those kept are forgotten. So at any moment the
    /// index holds every call a successor must re-fold from the floor.
    async fn checkpoint(&mut self) -> Result<(), Stop> {
        if let Some(mut w) = self.writing.take() {
            let done = w.finish().await?;
            self.settled(done, w.through).await?;
        }
        if self.lists.has_pending_writes() {
            self.start_writes();
            if let Some(mut w) = self.writing.take() {
                let done = w.finish().await?;
                self.settled(done, w.through).await?;
            }
        }
        let (puts, removals) = self.lists.index_writes();
        if !self.write_index(puts).await? {
            // A call is not recorded yet: the floor must not pass it.
            return Ok(());
        }
        let seq = self.lists.last_seq();
        match self.writer.write_floor(seq, self.floor.revision).await? {
            Written::Stored(revision) => self.floor = Floor { seq, revision },
            Written::Refused => {
                still_leading(&self.ctx, self.instance).await?;
                let now = read_floor(&self.ctx.stores, self.site())
                    .await
                    .map_err(ProjectorError::unavailable("reading the floor"))?;
                self.floor.revision = now.revision;
                return Ok(());
            }
        }
        self.write_index(removals).await?;
        self.lists.evict();
        self.pacer.checkpointed();
        Ok(())
    }

    /// Makes index writes; returns whether every one was stored.
    async fn write_index(&mut self, writes: Vec<IndexWrite>) -> Result<bool, Stop> {
        if writes.is_empty() {
            return Ok(true);
        }
        let outcomes = self.writer.write_index(writes).await?;
        let mut all = true;
        for (w, outcome) in outcomes {
            match outcome {
                Written::Stored(revision) => self.lists.index_written(&w, revision, false),
                Written::Refused => {
                    if all {
                        still_leading(&self.ctx, self.instance).await?;
                    }
                    all = false;
                    let key = index_key(self.site(), w.call);
                    let now = latest_one(&self.ctx.stores.projector, &key)
                        .await
                        .map_err(ProjectorError::unavailable("reading back the index"))?;
                    self.lists
                        .index_written(&w, now.map_or(0, |k| k.revision), true);
                }
            }
        }
        Ok(all)
    }

    fn publish_status(&self, role: StatusRole) {
        let mut counters = self.lists.counters();
        counters.written_seq = self.written;
        self.ctx.set_status(role, self.instance, Some(counters));
    }

    fn log_counters(&self) {
        let c = self.lists.counters();
        let phase = match self.pacer.phase() {
            Phase::CatchingUp => "catching up",
            Phase::Live => "live",
        };
        tracing::info!(
            site = %self.site(),
            phase,
            applied = c.applied,
            redelivered = c.redelivered,
            anomalies = c.anomalies,
            undecodable = c.undecodable,
            lists_published = c.lists_published,
            writes_refused = c.writes_refused,
            written_seq = self.written,
            active_calls = c.active_calls,
            last_seq = c.last_seq,
            "projector counters"
        );
    }
}

/// After a refused write: whether the lease still names this instance (then the write that got
/// there first was a replaced leader's, late), or not (then this one was replaced).
async fn still_leading(ctx: &SiteContext, instance: Uuid) -> Result<(), Stop> {
    let site = ctx.site;
    if Lease::names(&ctx.stores.projector, site, instance).await? {
        Ok(())
    } else {
        tracing::warn!(%site, "a write was refused and the lease names another instance");
        Err(Stop::Deposed)
    }
}

/// Waits for the cycle of list writes in flight, if any (never resolves without one).
async fn finish(writing: &mut Option<Writing>) -> Result<Vec<(Uuid, Written)>, ProjectorError> {
    match writing {
        Some(w) => w.finish().await,
        None => std::future::pending().await,
    }
}

fn report(site: Site, seq: u64, outcome: Ingested) {
    match outcome {
        Ingested::Applied { .. } => {}
        Ingested::Redelivered => tracing::debug!(%site, seq, "already handled; skipped"),
        Ingested::Anomaly(call, skip) => {
            tracing::warn!(%site, seq, %call, reason = skip.kind(), "skipped an event that makes no sense for the call: {skip}");
        }
        Ingested::Undecodable(e) => {
            tracing::warn!(%site, seq, reason = e.kind(), "skipped an undecodable event: {e}");
        }
    }
}

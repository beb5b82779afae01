//! A site's projector: folds `LEDGER_EVENTS` through the core and keeps the site's LCTParty
//! lists in KV `LEDGER_LCT` and on `ledger.lct.<site>.<call>`.
//!
//! - **Delivery.** A durable pull consumer `ledger-projector-<site>` over `ledger.ev.>` with
//!   acknowledge-all. Each batch is folded, its writes are made and confirmed, and only then is
//!   its last event acknowledged: the projector never acknowledges an event it has not handled.
//!   A redelivered event is recognised by its stream sequence and changes nothing.
//! - **Restart.** Calls in progress are indexed in the internal bucket `LEDGER_PROJECTOR` under
//!   `active.<site>.<call>` with their first stream sequence, written before the batch that
//!   starts the call is acknowledged and removed after the call ends. A new leader re-folds only
//!   those calls, from their first event up to the consumer's acknowledged floor, and the
//!   consumer redelivers the rest: no full re-read of the history. The lists a previous leader
//!   wrote from events it never acknowledged are read back from KV and compared with, and no
//!   list is written until the fold has read as far as that leader could have
//!   ([`SiteState::hold_lists_until`]): a list never goes back in time.
//! - **One writer.** A lease ([`crate::lease`]) lets one instance per site project; another
//!   waits on standby.

pub mod index;
pub(crate) mod recover;
mod state;
#[cfg(test)]
mod state_tests;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use futures::StreamExt;
use ledger_schemas::{Site, SiteOptions};
use tokio::sync::watch;
use uuid::Uuid;

pub use index::index_key;
pub use state::{Effects, Ingested, ListEffect, SiteState};

use crate::lease::{Lease, LeaseError};
use crate::status::{Role, Status};
use crate::{Config, Stores};
use recover::{TakeOver, take_over_consumer};
use writer::{Writer, Writing};

/// Why a projector stopped leading (it goes back to standby and retries).
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The lease was lost or could not be renewed.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// NATS or a stream could not be reached.
    #[error("{what}: {source}")]
    Unavailable {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
    /// History could not be read back at take-over.
    #[error(transparent)]
    Read(#[from] ledger_replay::ReadError),
}

fn unavailable(what: &'static str) -> impl FnOnce(async_nats::Error) -> ProjectorError {
    move |source| ProjectorError::Unavailable { what, source }
}

/// What a site's projector needs.
#[derive(Debug, Clone)]
pub struct SiteContext {
    /// The connection.
    pub client: async_nats::Client,
    /// The streams and buckets.
    pub stores: Stores,
    /// The site.
    pub site: Site,
    /// Settings.
    pub config: Config,
    /// The site's options, kept current by [`crate::watch_options`].
    pub options: watch::Receiver<SiteOptions>,
    /// Role and counters, read by `ledger.status.<site>`.
    pub status: Arc<Mutex<Status>>,
}

impl SiteContext {
    /// Publishes the role, and the counters of a leader: `progress` is its state and the
    /// sequence its lists are written through.
    fn set_status(&self, role: Role, instance: Uuid, progress: Option<(&SiteState, u64)>) {
        // A std mutex: held for a copy, never across an await.
        if let Ok(mut s) = self.status.lock() {
            s.role = role;
            s.instance = instance.to_string();
            if let Some((state, written)) = progress {
                s.counters = state.counters();
                s.counters.written_seq = written;
            }
        }
    }
}

/// The durable consumer's name for `site`.
pub fn consumer_name(site: Site) -> String {
    format!("ledger-projector-{site}")
}

/// Runs `site`'s projector until `shutdown`: standby until it holds the lease, then projecting;
/// after a failure it releases the lease, waits a moment and tries again.
pub async fn run(ctx: SiteContext, mut shutdown: watch::Receiver<bool>) {
    let instance = Uuid::now_v7();
    let site = ctx.site;
    loop {
        ctx.set_status(Role::Standby, instance, None);
        let acquired = Lease::acquire(
            &ctx.stores.projector,
            site,
            instance,
            ctx.config.lease_ttl,
            &mut shutdown,
        )
        .await;
        let mut lease = match acquired {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%site, error = %e, "cannot take the projector lease; retrying");
                if pause(&mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        tracing::info!(%site, %instance, "projecting this site");
        match lead(&ctx, &mut lease, &mut shutdown).await {
            Ok(()) => {
                ctx.set_status(Role::Stopping, instance, None);
                lease.release().await;
                tracing::info!(%site, "projector stopped cleanly");
                return;
            }
            Err(ProjectorError::Lease(e)) => {
                tracing::warn!(%site, error = %e, "stopped projecting; back to standby");
            }
            Err(e) => {
                tracing::error!(%site, error = %e, "projector failed; releasing the lease and retrying");
                lease.release().await;
                if pause(&mut shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Waits a second, or until shutdown (then returns true).
async fn pause(shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// Projects while holding the lease. Returns `Ok` on shutdown, after the batch in hand.
async fn lead(
    ctx: &SiteContext,
    lease: &mut Lease,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ProjectorError> {
    let site = ctx.site;
    let TakeOver {
        consumer,
        floor,
        again,
        horizon,
    } = take_over_consumer(ctx).await?;
    let mut state = SiteState::new(site, ctx.config.ended_calls_kept);
    let stored = recover::recover(&ctx.client, &ctx.stores, &mut state, floor).await?;
    state.resume_at(floor);
    // After another instance, or over lists already stored (a consumer removed by hand), the
    // lists stay as they are until this one has read as far: see `hold_lists_until`.
    if again || stored > 0 {
        state.hold_lists_until(horizon);
        if consumer.cached_info().num_pending == 0 {
            state.caught_up();
        }
    }
    let mut options_rx = ctx.options.clone();
    let mut options = *options_rx.borrow_and_update();
    let mut writer = Writer::new(ctx, floor);
    let mut writing: Option<Writing> = writer.start(state.effects(&options));
    // While far behind the stream (catching up), write cycles start at most every
    // `catch_up_linger`, so each coalesces more of the history; once caught up, at once.
    let mut backlog: u64 = 0;
    let mut cycle_started = Instant::now();
    let catching_up = |backlog: u64| backlog > 4 * ctx.config.batch as u64;
    ctx.set_status(
        Role::Leader,
        lease.instance(),
        Some((&state, writer.written())),
    );

    let messages = consumer
        .stream()
        .max_messages_per_batch(ctx.config.batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| unavailable("reading events")(e.into()))?;
    let mut chunks = messages.ready_chunks(ctx.config.batch);
    let mut renew = tokio::time::interval(lease.renew_every());
    renew.tick().await;
    let mut checkpoint_tick = tokio::time::interval(ctx.config.ack_interval);
    let mut log_tick = tokio::time::interval(ctx.config.log_interval);
    log_tick.tick().await;
    let mut logged = state.counters();

    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                writer.checkpoint(writing.take(), state.effects(&options)).await?;
                ctx.set_status(Role::Stopping, lease.instance(), Some((&state, writer.written())));
                log_counters(site, &state, writer.written());
                return Ok(());
            }
            _ = renew.tick() => lease.renew().await?,
            done = async {
                match writing.as_mut() {
                    Some(w) => (&mut w.task).await,
                    None => std::future::pending().await,
                }
            }, if writing.is_some() => {
                if let Some(w) = writing.take() {
                    writer.finished(w, done)?;
                }
                // Everything folded while those writes were in flight, coalesced.
                if !catching_up(backlog) {
                    writing = writer.start(state.effects(&options));
                    cycle_started = Instant::now();
                }
            }
            _ = tokio::time::sleep_until((cycle_started + ctx.config.catch_up_linger).into()),
                if writing.is_none() && state.has_pending_effects() =>
            {
                writing = writer.start(state.effects(&options));
                cycle_started = Instant::now();
            }
            changed = options_rx.changed() => {
                if changed.is_ok() {
                    options = *options_rx.borrow_and_update();
                    // The view is re-derived from the fold of every event read, which equals
                    // re-folding the log under the new settings.
                    state.mark_all_dirty();
                    if writing.is_none() {
                        writing = writer.start(state.effects(&options));
                    }
                }
            }
            // Unconstrained: tokio's cooperative budget (128 polls) would otherwise cut every
            // batch at about 128 messages, however many are waiting, and coalescing with it.
            chunk = tokio::task::unconstrained(chunks.next()) => {
                let Some(chunk) = chunk else {
                    writer.checkpoint(writing.take(), state.effects(&options)).await?;
                    return Err(unavailable("reading events")("the event stream ended".into()));
                };
                let mut last = None;
                let mut handled = 0;
                let mut fatal = None;
                for item in chunk {
                    match item {
                        Ok(msg) => {
                            match msg.info() {
                                Ok(info) => {
                                    let seq = info.stream_sequence;
                                    backlog = info.pending;
                                    if backlog == 0 {
                                        state.caught_up();
                                    }
                                    report(site, seq, state.ingest(seq, msg.subject.as_str(), &msg.payload, &options));
                                }
                                Err(e) => tracing::warn!(%site, error = %e, "a delivered message has no stream position; skipped"),
                            }
                            handled += 1;
                            last = Some(msg);
                        }
                        Err(e) if matches!(e.kind(), MessagesErrorKind::MissingHeartbeat | MessagesErrorKind::Pull) => {
                            tracing::warn!(%site, error = %e, "event delivery hiccup; continuing");
                        }
                        Err(e) => {
                            fatal = Some(e);
                            break;
                        }
                    }
                }
                state.count_batch();
                if let Some(msg) = last {
                    writer.hold(msg, handled);
                }
                if writer.checkpoint_due() || fatal.is_some() {
                    writer.checkpoint(writing.take(), state.effects(&options)).await?;
                } else if writing.is_none()
                    && (!catching_up(backlog) || cycle_started.elapsed() >= ctx.config.catch_up_linger)
                {
                    writing = writer.start(state.effects(&options));
                    cycle_started = Instant::now();
                }
                if let Some(e) = fatal {
                    return Err(unavailable("reading events")(e.into()));
                }
            }
            _ = checkpoint_tick.tick() => {
                if writer.checkpoint_due() {
                    writer.checkpoint(writing.take(), state.effects(&options)).await?;
                }
            }
            _ = log_tick.tick() => {
                let now = state.counters();
                if now != logged {
                    log_counters(site, &state, writer.written());
                    logged = now;
                }
            }
        }
        // After every turn, so `ledger.status.<site>` shows what is done.
        ctx.set_status(
            Role::Leader,
            lease.instance(),
            Some((&state, writer.written())),
        );
    }
}

fn log_counters(site: Site, state: &SiteState, written_seq: u64) {
    let c = state.counters();
    tracing::info!(
        %site,
        applied = c.applied,
        redelivered = c.redelivered,
        anomalies = c.anomalies,
        undecodable = c.undecodable,
        lists_published = c.lists_published,
        written_seq,
        active_calls = c.active_calls,
        batches = c.batches,
        last_seq = c.last_seq,
        "projector counters"
    );
}

fn report(site: Site, seq: u64, outcome: Ingested) {
    match outcome {
        Ingested::Applied => {}
        Ingested::Redelivered => tracing::debug!(%site, seq, "already handled; skipped"),
        Ingested::Anomaly(call, skip) => {
            tracing::warn!(%site, seq, %call, reason = skip.kind(), "skipped an event that makes no sense for the call: {skip}");
        }
        Ingested::Undecodable(e) => {
            tracing::warn!(%site, seq, reason = e.kind(), "skipped an undecodable event: {e}");
        }
    }
}

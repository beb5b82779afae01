//! A site's command service: TDeleteFromConference as the NATS micro service `ledger-command`,
//! on `ledger.cmd.<site>.delete_from_conference` in the micro services' shared queue group, so
//! several instances share the load.
//!
//! Each instance keeps its own fold of the site's calls in memory: at start it re-folds the calls
//! in progress from the site's index up to the site's floor ([`crate::site`], where that index is
//! exact), then follows `ledger.ev.>` from the floor on ([`EventFeed`]). A request is
//! decided against that view and the options in force; no request scans the stream. When the view
//! lags, the append's optimistic-concurrency check refuses it, and the service reads the call's
//! newer events, folds them and decides again.

mod append;
mod handle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::service::ServiceExt;
use futures::{FutureExt, StreamExt};
use ledger_core::Fold;
use ledger_replay::{EventFeed, Followed};
use ledger_schemas::{Site, SiteOptions, subject};
use tokio::sync::watch;

use crate::site::{SiteError, read_floor, recover};
use crate::status::Status;
use crate::{Config, Nats, Stores};

/// What a site's command service needs.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The connection.
    pub nats: Nats,
    /// The streams and buckets.
    pub stores: Stores,
    /// The site.
    pub site: Site,
    /// Settings.
    pub config: Config,
    /// The site's options, kept current by [`crate::watch_options`].
    pub options: watch::Receiver<SiteOptions>,
    /// This process's status for the site, where decisions are counted.
    pub status: Arc<Mutex<Status>>,
}

/// Why a command service stopped serving (it starts again after a pause).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The site's calls could not be re-folded.
    #[error(transparent)]
    View(#[from] SiteError),
    /// NATS failed.
    #[error("{what}: {source}")]
    Unavailable {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
}

fn unavailable(what: &'static str) -> impl FnOnce(async_nats::Error) -> CommandError {
    move |source| CommandError::Unavailable { what, source }
}

/// Runs `site`'s command service until `shutdown`, restarting it after a failure.
pub async fn run(ctx: CommandContext, mut shutdown: watch::Receiver<bool>) {
    loop {
        match serve_site(&ctx, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(site = %ctx.site, error = %e, "command service failed; restarting");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// The calls a command service holds: the fold alone, with nothing beside each call.
pub(crate) type Calls = Fold<()>;

/// Folds one delivered event into the service's calls.
fn ingest(calls: &mut Calls, ended_kept: usize, event: &Followed) {
    calls.ingest(event.seq, event.subject.as_str(), &event.payload);
    calls.evict_ended(ended_kept, |_| true);
}

async fn serve_site(
    ctx: &CommandContext,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), CommandError> {
    let site = ctx.site;
    let kept = ctx.config.ended_calls_kept;
    let mut calls = Calls::new();
    let floor = read_floor(&ctx.stores, site)
        .await
        .map_err(SiteError::unavailable("reading the site's floor"))?;
    recover(&ctx.nats, &ctx.stores, site, &mut calls, floor, |_, ()| {}).await?;
    let mut events = ctx.stores.events.clone();
    events
        .info()
        .await
        .map_err(|e| unavailable("following events")(e.into()))?;
    let mut feed = EventFeed::start(
        &ctx.nats.client,
        &events,
        floor.seq + 1,
        ctx.config.read_ahead,
    )
    .await
    .map_err(unavailable("following events"))?;
    let service = ctx
        .nats
        .client
        .service_builder()
        .description(format!("TDeleteFromConference for site {site}"))
        .metadata(HashMap::from([("site".to_owned(), site.to_string())]))
        .start("ledger-command", env!("CARGO_PKG_VERSION"))
        .await
        .map_err(unavailable("starting the ledger-command service"))?;
    let mut endpoint = service
        .endpoint_builder()
        .name("delete_from_conference")
        .add(subject::delete_from_conference(site))
        .await
        .map_err(unavailable("serving TDeleteFromConference"))?;
    tracing::info!(%site, floor = floor.seq, "command service ready");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                if let Err(e) = service.stop().await {
                    tracing::warn!(%site, error = %e, "could not stop the ledger-command service cleanly");
                }
                tracing::info!(%site, "command service stopped");
                return Ok(());
            }
            msg = tokio::task::unconstrained(feed.next()) => {
                match msg {
                    Some(Ok(m)) => ingest(&mut calls, kept, &m),
                    Some(Err(e)) => return Err(unavailable("following events")(e)),
                    None => return Err(unavailable("following events")("the event feed ended".into())),
                }
            }
            request = endpoint.next() => {
                let Some(request) = request else {
                    return Err(unavailable("serving TDeleteFromConference")("the endpoint closed".into()));
                };
                // Fold every event already delivered before deciding: the freshest view we have.
                while let Some(Some(Ok(m))) = tokio::task::unconstrained(feed.next()).now_or_never() {
                    ingest(&mut calls, kept, &m);
                }
                let (reply, accepted) = handle::handle(ctx, &mut calls, &request.message.payload).await;
                // A std mutex: held for an increment, never across an await.
                if let Ok(mut s) = ctx.status.lock() {
                    if accepted {
                        s.counters.deletes_accepted += 1;
                    } else {
                        s.counters.deletes_refused += 1;
                    }
                }
                if let Err(e) = request.respond(Ok(reply)).await {
                    tracing::warn!(%site, error = %e, "could not send a reply");
                }
            }
        }
    }
}

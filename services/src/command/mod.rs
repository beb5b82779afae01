//! A site's command service: TDeleteFromConference as the NATS micro service `ledger-command`,
//! on `ledger.cmd.<site>.delete_from_conference` in the micro services' shared queue group, so
//! several instances share the load.
//!
//! Each instance keeps its own view of the site in memory: at start it re-folds the calls in
//! progress from the projector's index up to the projector's acknowledged floor (where that index
//! is exact), then follows `ledger.ev.>` with an ordered consumer from the floor on. A request is
//! decided against that view and the options in force; no request scans the stream. When the view
//! lags, the append's optimistic-concurrency check refuses it, and the service reads the call's
//! newer events, folds them and decides again.

mod append;
mod handle;

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
    context::ConsumerInfoErrorKind,
};
use async_nats::service::ServiceExt;
use futures::{FutureExt, StreamExt};
use ledger_schemas::{Site, SiteOptions, subject};
use tokio::sync::watch;

use crate::projector::{ProjectorError, SiteState, consumer_name, recover::recover};
use crate::{Config, Stores};

/// What a site's command service needs.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The connection.
    pub client: async_nats::Client,
    /// JetStream on it.
    pub js: jetstream::Context,
    /// The streams and buckets.
    pub stores: Stores,
    /// The site.
    pub site: Site,
    /// Settings.
    pub config: Config,
    /// The site's options, kept current by [`crate::watch_options`].
    pub options: watch::Receiver<SiteOptions>,
}

/// Why a command service stopped serving (it starts again after a pause).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The view could not be built.
    #[error(transparent)]
    View(#[from] ProjectorError),
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

/// The projector's acknowledged floor: up to there, its index of calls in progress is exact.
async fn projector_floor(ctx: &CommandContext) -> Result<u64, CommandError> {
    match ctx
        .stores
        .events
        .consumer_info(consumer_name(ctx.site))
        .await
    {
        Ok(info) => Ok(info.ack_floor.stream_sequence),
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Ok(0),
        Err(e) => Err(unavailable("reading the projector's position")(e.into())),
    }
}

fn ingest(state: &mut SiteState, msg: &jetstream::Message, options: &SiteOptions) {
    match msg.info() {
        Ok(info) => {
            state.ingest(
                info.stream_sequence,
                msg.subject.as_str(),
                &msg.payload,
                options,
            );
        }
        Err(e) => tracing::warn!(error = %e, "an event without stream position; skipped"),
    }
}

async fn serve_site(
    ctx: &CommandContext,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), CommandError> {
    let site = ctx.site;
    let mut state = SiteState::without_lists(site, ctx.config.ended_calls_kept);
    let floor = projector_floor(ctx).await?;
    recover(&ctx.client, &ctx.stores, &mut state, floor).await?;
    let deliver_policy = match floor {
        0 => DeliverPolicy::All,
        floor => DeliverPolicy::ByStartSequence {
            start_sequence: floor + 1,
        },
    };
    let mut feed = ctx
        .stores
        .events
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject::EVENTS_SUBJECTS.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("following events")(e.into()))?
        .messages()
        .await
        .map_err(|e| unavailable("following events")(e.into()))?;
    let service = ctx
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
    tracing::info!(%site, floor, "command service ready");
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
                let options = *ctx.options.borrow();
                match msg {
                    Some(Ok(m)) => ingest(&mut state, &m, &options),
                    Some(Err(e)) => return Err(unavailable("following events")(e.into())),
                    None => return Err(unavailable("following events")("the event feed ended".into())),
                }
                let _ = state.effects(&options);
            }
            request = endpoint.next() => {
                let Some(request) = request else {
                    return Err(unavailable("serving TDeleteFromConference")("the endpoint closed".into()));
                };
                // Fold every event already delivered before deciding: the freshest view we have.
                let options = *ctx.options.borrow();
                while let Some(Some(Ok(m))) = tokio::task::unconstrained(feed.next()).now_or_never() {
                    ingest(&mut state, &m, &options);
                }
                let _ = state.effects(&options);
                let reply = handle::handle(ctx, &mut state, &request.message.payload).await;
                if let Err(e) = request.respond(Ok(reply)).await {
                    tracing::warn!(%site, error = %e, "could not send a reply");
                }
            }
        }
    }
}

//! A site's projector: folds `LEDGER_EVENTS` through the core and keeps the site's LCTParty
//! lists in KV `LEDGER_LCT` and on `ledger.lct.<site>.<call>`.
//!
//! One instance per site leads; others stand by. Over its life an instance goes through these
//! roles, each in code of its own:
//!
//! ```text
//!   Standby ──lease taken──▶ TakingOver ──ready──▶ Leading ──shutdown──▶ (stopped, lease released)
//!      ▲                         │                    │
//!      └────── SteppingDown ◀────┴── failure ─────────┤
//!      └──────────────────────────── deposed ─────────┘   (lease lost: writes nothing more)
//! ```
//!
//! - **Standby** ([`crate::lease`]): waits for the lease, which the server expires when its
//!   holder stops renewing it.
//! - **TakingOver** ([`takeover`]): fences the floor, re-folds the calls in progress from the
//!   index up to it, reads back what the site's keys hold, and starts reading the stream after
//!   the floor.
//! - **Leading** ([`leader`]): catching up or live, with checkpoints; every write is fenced.
//! - **SteppingDown**: after a failure, the lease is given up and the instance pauses before
//!   standing by again. A deposed leader (its lease lost or expired) goes straight back to
//!   standby: its writes in flight are aborted and it releases nothing.

mod feed;
mod leader;
mod lists;
mod option_log;
mod pacing;
mod takeover;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_schemas::{Site, SiteOptions};
use tokio::sync::watch;
use uuid::Uuid;

use crate::lease::{Lease, LeaseError};
use crate::site::SiteError;
use crate::status::{Counters, Role as StatusRole, Status};
use crate::{Config, Nats, Stores, fence::Fence};
use leader::{Ended, Leader};

/// Why a projector stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The lease could not be taken or kept.
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
    /// The site's state could not be read back at take-over.
    #[error(transparent)]
    Site(#[from] SiteError),
}

impl ProjectorError {
    pub(crate) fn unavailable(what: &'static str) -> impl FnOnce(async_nats::Error) -> Self {
        move |source| Self::Unavailable { what, source }
    }
}

/// What a site's projector needs.
#[derive(Debug, Clone)]
pub struct SiteContext {
    /// The connection.
    pub nats: Nats,
    /// The streams and buckets.
    pub stores: Stores,
    /// The site.
    pub site: Site,
    /// This process's id for its lifetime: its status's `instance` and its lease's value.
    pub instance: Uuid,
    /// Settings.
    pub config: Config,
    /// The site's options as this process watches them (for a standby's status; a leader
    /// records and applies changes itself).
    pub options: watch::Receiver<SiteOptions>,
    /// Role and counters, read by `ledger.status.<site>`.
    pub status: Arc<Mutex<Status>>,
}

impl SiteContext {
    /// Publishes this instance's role, and a leader's counters.
    fn set_status(&self, role: StatusRole, instance: Uuid, counters: Option<Counters>) {
        // A std mutex: held for a copy, never across an await.
        if let Ok(mut s) = self.status.lock() {
            s.role = role;
            s.instance = instance.to_string();
            if let Some(c) = counters {
                // The command service's counters are its own.
                s.counters = Counters {
                    deletes_accepted: s.counters.deletes_accepted,
                    deletes_refused: s.counters.deletes_refused,
                    ..c
                };
            }
        }
    }
}

/// The role an instance plays next.
enum Role {
    Standby,
    TakingOver(Box<Lease>),
    Leading(Box<Leader>),
    SteppingDown,
}

/// Runs `site`'s projector until `shutdown`: standby until it holds the lease, then leading;
/// after a failure it steps down and tries again.
pub async fn run(ctx: SiteContext, mut shutdown: watch::Receiver<bool>) {
    let instance = ctx.instance;
    let site = ctx.site;
    let fence = Fence::new(ctx.nats.js.clone(), &ctx.stores.projector);
    let mut role = Role::Standby;
    loop {
        role = match role {
            Role::Standby => {
                ctx.set_status(StatusRole::Standby, instance, None);
                let ttl = ctx.config.lease_ttl;
                match Lease::acquire(
                    &ctx.stores.projector,
                    &fence,
                    site,
                    instance,
                    ttl,
                    &mut shutdown,
                )
                .await
                {
                    Ok(Some(lease)) => Role::TakingOver(Box::new(lease)),
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(%site, error = %e, "cannot take the projector lease; retrying");
                        Role::SteppingDown
                    }
                }
            }
            Role::TakingOver(lease) => {
                tracing::info!(%site, %instance, "taking over this site's projection");
                match takeover::take_over(&ctx, *lease).await {
                    Ok(leader) => Role::Leading(Box::new(leader)),
                    Err(e) => {
                        tracing::error!(%site, error = %e, "take-over failed; stepping down");
                        Role::SteppingDown
                    }
                }
            }
            Role::Leading(leader) => match leader.run(&mut shutdown).await {
                Ended::Stopped => {
                    tracing::info!(%site, "projector stopped cleanly");
                    return;
                }
                Ended::Deposed => {
                    tracing::warn!(%site, "no longer the leader: writing nothing more; standing by");
                    Role::Standby
                }
                Ended::Failed(e) => {
                    tracing::error!(%site, error = %e, "projector failed; stepping down");
                    Role::SteppingDown
                }
            },
            Role::SteppingDown => {
                ctx.set_status(StatusRole::Standby, instance, None);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => Role::Standby,
                    _ = shutdown.changed() => return,
                }
            }
        };
    }
}

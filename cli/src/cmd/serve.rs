//! `ledger serve`.

use std::time::Duration;

use ledger_schemas::Site;

use super::{Globals, parse_site, shutdown_signal};
use crate::CliError;
use ledger_services::{Config, StoreConfig};

/// Arguments of `ledger serve`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServeArgs {
    /// A site to serve (repeat for several): its projector (and command service).
    #[arg(long = "site", required = true, value_parser = parse_site)]
    pub(crate) sites: Vec<Site>,
    /// Replicas of each stream and bucket when they are created (3 on a three-node cluster).
    #[arg(long, default_value_t = 1)]
    pub(crate) replicas: usize,
    /// Most events folded at once (1 to 100,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=ledger_services::MAX_BATCH as u64))]
    pub(crate) batch: u64,
    /// Seconds a site's projector lease lives without renewal, at least 1: a standby takes over
    /// at most this long after the leader stopped renewing it (crashed, paused or cut off).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) lease_ttl: u64,
    /// Seconds the marker of a deleted key (an ended call's list) stays before the server removes
    /// it; a replaced projector's late write is refused while it exists.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..))]
    pub(crate) marker_ttl: u64,
    /// Run only the projectors, only the command services, or only the statistics (default:
    /// all three).
    #[arg(long, value_enum)]
    pub(crate) only: Option<Role>,
    /// Never create or change a stream or bucket: find them as an operator created them
    /// (`ledger provision` with an operator's credentials), for users without those rights.
    #[arg(long)]
    pub(crate) no_provision: bool,
}

/// One of the services of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    /// The projector (LCTParty lists).
    Projector,
    /// The command service (TDeleteFromConference).
    Commands,
    /// The statistics projection (`LEDGER_STATS`).
    Stats,
}

/// `ledger serve`: runs the projector and command service of the named sites until SIGINT or
/// SIGTERM, then stops cleanly.
///
/// # Errors
///
/// When NATS cannot be reached or the streams cannot be provisioned.
pub(crate) async fn serve(g: &Globals, args: ServeArgs) -> Result<(), CliError> {
    let ep = g.connect("ledger-serve").await?;
    let config = Config {
        projector: args.only.is_none_or(|r| r == Role::Projector),
        commands: args.only.is_none_or(|r| r == Role::Commands),
        stats: args.only.is_none_or(|r| r == Role::Stats),
        ..Config::default()
    }
    .batch(usize::try_from(args.batch).unwrap_or(usize::MAX))
    .provision(!args.no_provision)
    .lease_ttl(Duration::from_secs(args.lease_ttl))
    .store(StoreConfig {
        replicas: args.replicas,
        marker_ttl: Duration::from_secs(args.marker_ttl),
        ..StoreConfig::default()
    });
    ledger_services::serve(ep.nats.clone(), &args.sites, config, shutdown_signal()).await?;
    Ok(())
}

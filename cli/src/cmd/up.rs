//! `ledger up`: a server (embedded unless one is named) and the services of some sites, in the
//! foreground, with a status line every few seconds on a terminal.

use std::io::Write;
use std::time::Duration;

use ledger_schemas::Site;
use ledger_services::{Config, StoreConfig};

use super::{Globals, parse_site, shutdown_signal};
use crate::CliError;
use crate::connection::nats_config_dir;
use crate::context::{self, Context};
use crate::embedded::{self, Embedded};
use crate::output::stderr_is_terminal;

/// Arguments of `ledger up`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UpArgs {
    /// A site to serve (repeatable) [default: SiteA, SiteB and SiteC].
    #[arg(long = "site", value_parser = parse_site)]
    pub(crate) sites: Vec<Site>,
    /// The embedded server's client port [default: a free loopback port].
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Seconds between two status lines on a terminal (0: none).
    #[arg(long, default_value_t = 5)]
    pub(crate) status_every: u64,
}

/// `ledger up`.
///
/// # Errors
///
/// When a `ledger up` already runs on the data folder, or the server or services cannot start.
pub(crate) async fn up(g: &Globals, args: UpArgs) -> Result<(), CliError> {
    let sites = if args.sites.is_empty() {
        ["SiteA", "SiteB", "SiteC"]
            .iter()
            .map(|s| Site::new(s))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        args.sites.clone()
    };
    let (mut conn, url) = g.conn.connection("ledger-up")?;
    let mut server = None;
    if url.is_none() {
        let data = g.conn.data_dir()?;
        if let Some(state) = embedded::running(&data) {
            return Err(format!(
                "`ledger {}` (pid {}) already runs the server of {} at {}: stop it first, or give another --data",
                state.command,
                state.pid,
                data.display(),
                state.url
            )
            .into());
        }
        let started = Embedded::start(&embedded::Options {
            data,
            port: args.port,
            state: true,
            command: "up".into(),
        })?;
        conn.servers = started.url().to_owned();
        write_context(started.url());
        server = Some(started);
    }
    let nats = conn.connect().await?;
    let names: Vec<String> = sites.iter().map(ToString::to_string).collect();
    println!(
        "ledger up: NATS at {}; serving {}",
        conn.servers,
        names.join(", ")
    );
    println!("  nats --context ledger ...   reaches the same server; Ctrl-C stops everything");
    let _ = std::io::stdout().flush();
    let status_every = (args.status_every > 0 && stderr_is_terminal())
        .then(|| Duration::from_secs(args.status_every));
    let reporter =
        status_every.map(|every| tokio::spawn(report(nats.client.clone(), sites.clone(), every)));
    let config = Config::default().store(StoreConfig::default());
    let served = ledger_services::serve(nats, &sites, config, shutdown_signal()).await;
    if let Some(r) = reporter {
        r.abort();
    }
    // The services have stopped cleanly; the server goes last.
    if let Some(mut s) = server {
        s.stop();
    }
    served?;
    Ok(())
}

/// Writes the `nats` CLI context `ledger` naming this server.
fn write_context(url: &str) {
    let Some(dir) = nats_config_dir() else {
        return;
    };
    let ctx = Context {
        description: "Call Ledger (ledger up)".into(),
        url: url.to_owned(),
        ..Context::default()
    };
    if let Err(e) = context::save(&dir, "ledger", &ctx) {
        tracing::warn!(error = %e, "could not write the nats CLI context `ledger`");
    }
}

/// Every `every`, one line on standard error: per site, its role, calls in progress, events
/// applied, deletes accepted and refused.
async fn report(client: async_nats::Client, sites: Vec<Site>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let mut parts = Vec::new();
        for &site in &sites {
            let statuses =
                ledger_services::statuses(&client, site, Duration::from_millis(300)).await;
            let leader = statuses
                .iter()
                .find(|s| s.role == ledger_services::Role::Leader);
            let deletes: (u64, u64) = statuses.iter().fold((0, 0), |(a, r), s| {
                (
                    a + s.counters.deletes_accepted,
                    r + s.counters.deletes_refused,
                )
            });
            parts.push(match leader {
                Some(s) => format!(
                    "{site}: leader, {} calls, {} events, deletes {} ok / {} refused",
                    s.counters.active_calls, s.counters.applied, deletes.0, deletes.1
                ),
                None => format!("{site}: no leader yet"),
            });
        }
        eprintln!("{}", parts.join(" | "));
    }
}

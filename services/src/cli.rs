//! The subcommands of the `ledger` binary: each connects, does its work, and prints a table or
//! JSON Lines.

use std::io::Write;

use async_nats::jetstream;

use std::time::Duration;

use ledger_schemas::Site;

use crate::{Config, StoreConfig, connect, provision as provision_stores};

/// A boxed error for the binary's top level.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object a line, UUIDs as text, for scripts.
    Json,
}

/// Options every subcommand shares.
#[derive(Debug, Clone)]
pub struct Globals {
    /// NATS URL(s).
    pub nats: String,
    /// Output format.
    pub format: Format,
}

/// Logs go to standard error through `tracing`; `RUST_LOG` filters them (default `info`). With
/// `--format json` the log lines are JSON too.
pub fn init_logging(format: Format) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Json => builder.json().try_init(),
        Format::Table => builder.try_init(),
    };
}

/// Arguments of `ledger provision`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProvisionArgs {
    /// Replicas of each stream and bucket (3 on a three-node cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
}

/// `ledger provision`: creates the streams and buckets when absent and prints their state.
///
/// # Errors
///
/// When NATS cannot be reached or a stream exists with incompatible settings.
pub async fn provision(g: &Globals, args: ProvisionArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-provision").await?;
    let js = jetstream::new(client);
    let store = StoreConfig {
        replicas: args.replicas,
        ..StoreConfig::default()
    };
    let mut stores = provision_stores(&js, &store).await?;
    let mut rows = Vec::new();
    for s in [&mut stores.events, &mut stores.audit] {
        let info = s.info().await?;
        rows.push((
            info.config.name.clone(),
            "stream",
            info.state.messages,
            info.config.num_replicas,
        ));
    }
    for kv in [&stores.lct, &stores.config] {
        let status = kv.status().await?;
        rows.push((
            status.bucket().to_owned(),
            "kv",
            status.values(),
            status.info.config.num_replicas,
        ));
    }
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => {
            for (name, kind, messages, replicas) in rows {
                let line = serde_json::json!({
                    "name": name, "kind": kind, "messages": messages, "replicas": replicas,
                });
                writeln!(out, "{line}")?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:<16} {:<7} {:>10} {:>8}",
                "NAME", "KIND", "MESSAGES", "REPLICAS"
            )?;
            for (name, kind, messages, replicas) in rows {
                writeln!(out, "{name:<16} {kind:<7} {messages:>10} {replicas:>8}")?;
            }
        }
    }
    Ok(())
}

/// Arguments of `ledger serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// A site to serve (repeat for several): its projector (and command service).
    #[arg(long = "site", required = true, value_parser = parse_site)]
    pub sites: Vec<Site>,
    /// Replicas of each stream and bucket when they are created (3 on a three-node cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Most events handled between two acknowledgements.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Seconds a site's projector lease lives without renewal (a standby takes over after it).
    #[arg(long, default_value_t = 10.0)]
    pub lease_ttl: f64,
    /// Run only the projectors, or only the command services (default: both).
    #[arg(long, value_enum)]
    pub only: Option<Role>,
}

/// One of the services of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The projector (LCTParty lists).
    Projector,
    /// The command service (TDeleteFromConference).
    Commands,
}

/// Parses a site name for clap.
pub fn parse_site(s: &str) -> Result<Site, String> {
    Site::new(s).map_err(|e| e.to_string())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// `ledger serve`: runs the projector and command service of the named sites until SIGINT or
/// SIGTERM, then stops cleanly.
///
/// # Errors
///
/// When NATS cannot be reached or the streams cannot be provisioned.
pub async fn serve(g: &Globals, args: ServeArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-serve").await?;
    let config = Config {
        projector: args.only != Some(Role::Commands),
        commands: args.only != Some(Role::Projector),
        ..Config::default()
    }
    .batch(args.batch)
    .lease_ttl(Duration::from_secs_f64(args.lease_ttl.max(0.1)))
    .store(StoreConfig {
        replicas: args.replicas,
        ..StoreConfig::default()
    });
    crate::serve(client, &args.sites, config, shutdown_signal()).await?;
    Ok(())
}

/// Arguments of `ledger bench catch-up`.
#[derive(Debug, Clone, clap::Args)]
pub struct CatchUpArgs {
    /// Events in the stream; missing ones are published first (use a server of its own).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Calls in progress at once in the synthetic traffic.
    #[arg(long, default_value_t = 100)]
    pub concurrent_calls: usize,
    /// Rounds of each reader, alternating; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Most events handled between two acknowledgements (both readers).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
}

/// `ledger bench catch-up`: the projector's catch-up rate next to a raw pull consumer.
///
/// # Errors
///
/// When NATS fails.
pub async fn bench_catch_up(g: &Globals, args: CatchUpArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-bench").await?;
    let report = crate::bench::catch_up(
        client,
        crate::bench::CatchUp {
            events: args.events,
            concurrent_calls: args.concurrent_calls,
            rounds: args.rounds,
            config: Config::default().batch(args.batch),
            progress: g.format == Format::Table,
        },
    )
    .await?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Format::Table => {
            writeln!(
                out,
                "{:<42} {:>10} {:>14}  rounds (s)",
                "READER", "EVENTS", "MEDIAN EV/S"
            )?;
            for r in [&report.raw, &report.projector] {
                let rounds: Vec<String> = r.seconds.iter().map(|s| format!("{s:.2}")).collect();
                writeln!(
                    out,
                    "{:<42} {:>10} {:>14.0}  {}",
                    r.reader,
                    r.events,
                    r.median_rate,
                    rounds.join(" ")
                )?;
            }
            writeln!(out, "ratio projector/raw: {:.2}", report.ratio)?;
        }
    }
    Ok(())
}

/// Arguments of `ledger status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The site whose projector to ask.
    #[arg(long, value_parser = parse_site)]
    pub site: Site,
}

/// `ledger status`: asks a site's projector for its role and counters.
///
/// # Errors
///
/// When NATS cannot be reached or no projector of the site answers.
pub async fn status(g: &Globals, args: StatusArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-status").await?;
    let reply = client
        .request(crate::status_subject(args.site), "".into())
        .await
        .map_err(|e| format!("no projector of {} answered: {e}", args.site))?;
    let status: serde_json::Value = serde_json::from_slice(&reply.payload)?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{status}")?,
        Format::Table => {
            writeln!(out, "site      {}", status["site"].as_str().unwrap_or("?"))?;
            writeln!(out, "role      {}", status["role"].as_str().unwrap_or("?"))?;
            writeln!(
                out,
                "instance  {}",
                status["instance"].as_str().unwrap_or("?")
            )?;
            if let Some(counters) = status["counters"].as_object() {
                for (name, value) in counters {
                    writeln!(out, "{name:<17} {value}")?;
                }
            }
        }
    }
    Ok(())
}

/// Arguments of `ledger replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The call to replay.
    #[arg(long)]
    pub call: uuid::Uuid,
    /// Show this site's view (under its propagation setting now) instead of the global view.
    #[arg(long, value_parser = parse_site)]
    pub site: Option<Site>,
}

/// `ledger replay`: every stored event of a call in stream order, with the parties after it.
///
/// # Errors
///
/// When NATS cannot be reached.
pub async fn replay(g: &Globals, args: ReplayArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-replay").await?;
    let viewpoint = match args.site {
        None => ledger_replay::Viewpoint::Global,
        Some(site) => {
            let js = jetstream::new(client.clone());
            let config = js
                .get_key_value(ledger_schemas::subject::CONFIG_BUCKET)
                .await?;
            let key = ledger_schemas::ConfigKey {
                site,
                option: ledger_schemas::OptionName::UseDataFrom,
            };
            let propagates = config
                .get(key.to_string())
                .await?
                .is_some_and(|v| v.as_ref() == b"current");
            ledger_replay::Viewpoint::Site { site, propagates }
        }
    };
    let messages = ledger_replay::read_call(&client, args.call, 1, None).await?;
    if messages.is_empty() {
        return Err(format!("no event of call {} is stored", args.call).into());
    }
    let steps = ledger_replay::fold(args.call, &messages, viewpoint);
    let mut out = std::io::stdout().lock();
    if g.format == Format::Table {
        writeln!(
            out,
            "{:>8}  {:<14} {:<24} PARTIES AFTER",
            "SEQ", "KIND", "PARTY"
        )?;
    }
    for step in &steps {
        let line = step.to_json();
        match g.format {
            Format::Json => writeln!(out, "{line}")?,
            Format::Table => {
                let who = match (line["dn"].as_str(), line["site"].as_str()) {
                    (Some(dn), Some(site)) => format!("{dn}@{site}"),
                    _ => line["party"]
                        .as_str()
                        .map(|p| p[..8].to_owned())
                        .unwrap_or_default(),
                };
                let kind = line["kind"].as_str().unwrap_or("(undecodable)");
                let note = line["skipped"]
                    .as_str()
                    .or(line["error"].as_str())
                    .map(|n| format!("  [not applied: {n}]"))
                    .unwrap_or_default();
                let parties: Vec<String> = step
                    .parties
                    .iter()
                    .map(|p| format!("{}@{}", p.dn, p.location))
                    .collect();
                writeln!(
                    out,
                    "{:>8}  {kind:<14} {who:<24} {}{note}",
                    step.seq,
                    parties.join(", ")
                )?;
            }
        }
    }
    Ok(())
}

/// Arguments of `ledger delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// The requester's site: its command service decides, against its view.
    #[arg(long, value_parser = parse_site)]
    pub site: Site,
    /// The call.
    #[arg(long)]
    pub call: uuid::Uuid,
    /// The requester's DN (a present party of the call located at --site).
    #[arg(long)]
    pub this_dn: String,
    /// The party to delete: its party id from the LCTParty list, `dn@site`, or a bare DN.
    #[arg(long)]
    pub other_dn: String,
    /// The request id (idempotency key); a new one when absent. Resend with the same id to retry.
    #[arg(long)]
    pub request: Option<uuid::Uuid>,
    /// A reason recorded in the audit, as key=value (repeatable).
    #[arg(long = "reason", value_parser = parse_pair)]
    pub reasons: Vec<(String, String)>,
    /// An extension recorded in the audit, as key=value (repeatable).
    #[arg(long = "extension", value_parser = parse_pair)]
    pub extensions: Vec<(String, String)>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

/// The reply as JSON: UUIDs as text.
pub fn reply_json(reply: &ledger_schemas::DeleteReply) -> serde_json::Value {
    let party = |p: &ledger_schemas::LctParty| {
        serde_json::json!({
            "party": p.party.to_string(), "dn": p.dn.as_str(),
            "location": p.location.as_str(), "role": p.role.as_str(),
        })
    };
    let mut v = serde_json::json!({ "request": reply.request.map(|r| r.to_string()) });
    match &reply.outcome {
        Ok(a) => {
            v["ok"] = true.into();
            v["seq"] = a.seq.into();
            v["event"] = a.event.to_string().into();
            v["parties"] = a.parties.iter().map(party).collect();
        }
        Err(r) => {
            v["ok"] = false.into();
            v["error"] = serde_json::json!({
                "code": r.code.as_str(), "terr": r.code.terr(), "message": r.message,
                "candidates": r.candidates.iter().map(party).collect::<Vec<_>>(),
            });
        }
    }
    v
}

/// What `ledger delete` asks the process to exit with: 0 accepted, 2 refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The party was deleted (or had been, by the same request).
    Accepted,
    /// The request was refused; the reply says why.
    Refused,
}

/// `ledger delete`: sends one TDeleteFromConference and prints the reply.
///
/// # Errors
///
/// When NATS cannot be reached, no command service of the site answers, or the arguments break
/// the naming rules.
pub async fn delete(g: &Globals, args: DeleteArgs) -> Result<Answer, CliError> {
    use ledger_schemas::{DeleteReply, DeleteRequest, Dn, Message, Target};
    let request = DeleteRequest {
        request: args.request.unwrap_or_else(uuid::Uuid::now_v7),
        call: args.call,
        this_dn: Dn::new(&args.this_dn)?,
        other_dn: Target::parse(&args.other_dn)?,
        reasons: args.reasons.into_iter().collect(),
        extensions: args.extensions.into_iter().collect(),
    };
    let client = connect(&g.nats, "ledger-delete").await?;
    let subject = ledger_schemas::subject::delete_from_conference(args.site);
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject, request.encode().into()),
    )
    .await
    .map_err(|_| format!("no reply from {}'s command service within 10 s", args.site))?
    .map_err(|e| format!("no command service of {} answered: {e}", args.site))?;
    let reply = DeleteReply::decode(&answer.payload)?;
    let mut out = std::io::stdout().lock();
    match g.format {
        Format::Json => writeln!(out, "{}", reply_json(&reply))?,
        Format::Table => match &reply.outcome {
            Ok(a) => {
                writeln!(
                    out,
                    "deleted {}: party_deleted {} at stream sequence {}",
                    args.other_dn, a.event, a.seq
                )?;
                writeln!(out, "parties now in {}'s view:", args.site)?;
                for p in &a.parties {
                    writeln!(
                        out,
                        "  {}  {:<14} {:<8} {}",
                        p.party,
                        p.dn,
                        p.location,
                        p.role.as_str()
                    )?;
                }
            }
            Err(r) => {
                writeln!(
                    out,
                    "refused: {} (terr {}): {}",
                    r.code.as_str(),
                    r.code.terr(),
                    r.message
                )?;
                for p in &r.candidates {
                    writeln!(
                        out,
                        "  candidate {}  {:<14} {:<8} {}",
                        p.party,
                        p.dn,
                        p.location,
                        p.role.as_str()
                    )?;
                }
            }
        },
    }
    Ok(if reply.outcome.is_ok() {
        Answer::Accepted
    } else {
        Answer::Refused
    })
}

/// Arguments of `ledger audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Only the decisions about this call.
    #[arg(long)]
    pub call: Option<uuid::Uuid>,
    /// Only the decisions of this site.
    #[arg(long, value_parser = parse_site)]
    pub site: Option<Site>,
}

/// `ledger audit`: every recorded decision in stream order.
///
/// # Errors
///
/// When NATS cannot be reached.
pub async fn audit(g: &Globals, args: AuditArgs) -> Result<(), CliError> {
    let client = connect(&g.nats, "ledger-audit").await?;
    let js = jetstream::new(client);
    let entries = ledger_replay::read_audit(&js, args.site, args.call).await?;
    let mut out = std::io::stdout().lock();
    if g.format == Format::Table {
        writeln!(
            out,
            "{:>6}  {:<27} {:<8} {:<36} {:<10} {:<38} RESULT",
            "SEQ", "TIME (µs)", "SITE", "CALL", "THIS_DN", "OTHER_DN"
        )?;
    }
    for entry in entries {
        let record = match entry.record {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(seq = entry.seq, error = %e, "an audit record does not decode; skipped");
                continue;
            }
        };
        let code = record.reply.code().map(|c| c.as_str());
        let line = serde_json::json!({
            "ts": record.ts,
            "site": record.site.as_str(),
            "call": entry.call.to_string(),
            "request": record.reply.request.map(|r| r.to_string()),
            "this_dn": record.request_text("this_dn"),
            "other_dn": record.request_text("other_dn"),
            "ok": record.reply.outcome.is_ok(),
            "code": code,
        });
        match g.format {
            Format::Json => writeln!(out, "{line}")?,
            Format::Table => writeln!(
                out,
                "{:>6}  {:<27} {:<8} {:<36} {:<10} {:<38} {}",
                entry.seq,
                record.ts,
                record.site,
                entry.call,
                record.request_text("this_dn").unwrap_or("-"),
                record.request_text("other_dn").unwrap_or("-"),
                code.unwrap_or("ok"),
            )?,
        }
    }
    Ok(())
}

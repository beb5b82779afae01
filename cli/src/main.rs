//! `ledger`: the Call Ledger command line. Parses arguments, finds the server, and hands over to
//! the libraries.

mod bench;
mod chart;
mod cmd;
mod connection;
mod context;
mod embedded;
mod output;
mod process;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cmd::Globals;
use connection::ConnArgs;
use output::Format;

/// A boxed error for the binary's top level.
pub(crate) type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Call Ledger: an event-sourced record of who is on which call, across contact-centre sites.
///
/// The server: --server/-s (or $NATS_URL), else a NATS context (--context, $NATS_CONTEXT, or the
/// `nats` CLI's selected one), else a running `ledger up`, else an embedded nats-server that the
/// command starts on its data folder.
#[derive(Debug, Parser)]
#[command(name = "ledger", version, after_help = "Example:\n  ledger demo")]
struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    /// Output format: a table for people, or JSON Lines for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole product at work in about ten seconds, on a private server: a multi-site
    /// conference, LCTParty lists, deletes accepted and refused, the audit and the replay.
    #[command(after_help = "Example:\n  ledger demo")]
    Demo(cmd::DemoArgs),
    /// A server (embedded unless one is named) and the services of some sites, in the
    /// foreground, until Ctrl-C or SIGTERM.
    #[command(
        after_help = "Examples:\n  ledger up\n  ledger up --site East --site West --port 4222"
    )]
    Up(cmd::UpArgs),
    /// Realistic traffic through the contract: calls across sites, conferences, supervisors,
    /// transfers, and delete requests through the command service.
    #[command(
        after_help = "Example:\n  ledger sim --site SiteA --site SiteB --site SiteC --calls 200 --rate 20 --seed 7"
    )]
    Sim(sim::SimArgs),
    /// Run the projector and command service of each named site until SIGINT or SIGTERM.
    #[command(
        after_help = "Examples:\n  ledger serve --site SiteA --site SiteB\n  ledger serve --site SiteA --only commands"
    )]
    Serve(cmd::ServeArgs),
    /// Send one TDeleteFromConference and print the reply (exit status 2 when refused).
    #[command(
        after_help = "Example:\n  ledger delete --site SiteA --call 0192f3a4-5b6c-7d8e-9f01-23456789abcd \\\n    --this-dn 7001 --other-dn 7001@SiteB"
    )]
    Delete(cmd::DeleteArgs),
    /// The recorded TDeleteFromConference decisions and, with --changes, the conference and
    /// option changes, in time order.
    #[command(
        after_help = "Examples:\n  ledger audit --call 0192f3a4-5b6c-7d8e-9f01-23456789abcd --format json\n  ledger audit --dn 7001@SiteB --since 2026-11-27T09:00:00Z --format csv\n  ledger audit --changes --outcome refused"
    )]
    Audit(cmd::AuditArgs),
    /// Follow party events as they are stored, with the parties after each.
    #[command(
        after_help = "Examples:\n  ledger tail --site SiteA\n  ledger tail --dn 7001@SiteB --format json\n  ledger tail --durable billing --since 1 --until-idle --format json"
    )]
    Tail(cmd::TailArgs),
    /// The durable subscriptions (`ledger tail --durable`) with their position and lag; or
    /// remove one.
    #[command(
        after_help = "Examples:\n  ledger subscriptions\n  ledger subscriptions --remove billing"
    )]
    Subscriptions(cmd::SubscriptionsArgs),
    /// A site's stored LCTParty list of a call (`--format genesys`: the EventUserEvent's pairs).
    #[command(
        after_help = "Example:\n  ledger lct --site SiteA --call 0192f3a4-5b6c-7d8e-9f01-23456789abcd --format genesys"
    )]
    Lct(cmd::LctArgs),
    /// A site's three options: show them, or set one.
    #[command(subcommand)]
    Config(cmd::ConfigCommand),
    /// Every stored event of a call in stream order, with the parties after it; or every site's
    /// lists at a moment (--at).
    #[command(
        after_help = "Examples:\n  ledger replay --call 0192f3a4-5b6c-7d8e-9f01-23456789abcd --site SiteA\n  ledger replay --call 0192f3a4-5b6c-7d8e-9f01-23456789abcd --at 2026-11-27T09:30:00Z"
    )]
    Replay(cmd::ReplayArgs),
    /// Ask a site's processes for their role and counters.
    #[command(after_help = "Example:\n  ledger status --site SiteA --format json")]
    Status(cmd::StatusArgs),
    /// The calls in progress at a site, the quietest first (to find calls whose leaves never came).
    #[command(after_help = "Example:\n  ledger calls --site SiteA")]
    Calls(cmd::CallsArgs),
    /// Each site's figures over time (calls, conferences, CallObserved, durations, deletes), as
    /// the live projection stored them or recounted from history.
    #[command(
        after_help = "Examples:\n  ledger stats --by hour --tz Europe/Paris\n  ledger stats --site SiteA --since 2026-11-27T00:00:00Z --by 15m --format csv\n  ledger stats --recount --format json\n  ledger stats --chart observed_us --svg observed.svg"
    )]
    Stats(cmd::StatsArgs),
    /// Check that every site's lists and the audit agree with the event log (exit 1 if not).
    #[command(after_help = "Example:\n  ledger verify --site SiteA --site SiteB --format json")]
    Verify(cmd::VerifyArgs),
    /// Create the streams and buckets of the contract when absent, and show them.
    #[command(after_help = "Example:\n  ledger provision --replicas 3")]
    Provision(cmd::ProvisionArgs),
    /// Measure the ledger against raw async-nats on the same server (use a server of its own).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Watches an owner process and stops an embedded nats-server once the owner is gone (started
    /// by `ledger` itself).
    #[command(hide = true)]
    Supervise {
        /// The owner's pid.
        #[arg(long)]
        owner_pid: u32,
        /// The server's pid.
        #[arg(long)]
        server_pid: u32,
        /// The state file to remove if it still names the owner.
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The projector's catch-up rate over a stream, next to async-nats' ordered consumer and a
    /// bare pull consumer with the projector's window.
    #[command(
        after_help = "Example:\n  ledger bench catch-up --events 1000000 --concurrent-calls 100 --rounds 3"
    )]
    CatchUp(cmd::CatchUpArgs),
    /// Accepted TDeleteFromConference latency, next to a raw publish with the same headers.
    #[command(after_help = "Example:\n  ledger bench delete --requests 2000 --rounds 3")]
    Delete(cmd::DeleteBenchArgs),
    /// One call read back and folded on streams of growing size, next to the raw direct get.
    #[command(
        after_help = "Example:\n  ledger bench replay --events 1000000,10000000 --concurrent-calls 1000"
    )]
    Replay(cmd::ReplayBenchArgs),
    /// Party events through the producer API, next to raw publishes with `Nats-Msg-Id`.
    #[command(after_help = "Example:\n  ledger bench publish --events 100000 --rounds 3")]
    Publish(cmd::PublishBenchArgs),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    // Whether the server was named on the command line itself (the demo ignores $NATS_URL).
    let server_flag = matches.value_source("server") == Some(ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Command::Supervise {
        owner_pid,
        server_pid,
        state_file,
    } = &cli.command
    {
        embedded::supervise_loop(*owner_pid, *server_pid, state_file.as_deref());
        return ExitCode::SUCCESS;
    }
    let allowed: &[Format] = match &cli.command {
        Command::Audit(_) | Command::Stats(_) => &[Format::Table, Format::Json, Format::Csv],
        Command::Lct(_) => &[Format::Table, Format::Json, Format::Genesys],
        _ => &[Format::Table, Format::Json],
    };
    let name = matches.subcommand_name().unwrap_or_default().to_owned();
    if let Err(e) = cli.format.only(allowed, &name) {
        eprintln!("ledger: {e}");
        return ExitCode::from(2);
    }
    // Commands whose output is the point log warnings only, unless RUST_LOG says otherwise; the
    // client library's own reports of a failed connection are left out (the command reports its
    // error once, on one line).
    let quiet = !matches!(cli.command, Command::Serve(_) | Command::Up(_));
    output::init_logging(
        cli.format,
        if quiet {
            "warn,async_nats=off"
        } else {
            "info,async_nats=warn"
        },
    );
    let globals = Globals {
        conn: cli.conn,
        format: cli.format,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ledger: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut refused = false;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => cmd::demo(&globals, args, server_flag).await,
            Command::Up(args) => cmd::up(&globals, args).await,
            Command::Sim(args) => sim::sim(&globals, args).await,
            Command::Delete(args) => cmd::delete(&globals, args).await.map(|answer| {
                refused = answer == cmd::Answer::Refused;
            }),
            Command::Audit(args) => cmd::audit(&globals, args).await,
            Command::Tail(args) => cmd::tail(&globals, args).await,
            Command::Subscriptions(args) => cmd::subscriptions(&globals, args).await,
            Command::Lct(args) => cmd::lct(&globals, args).await,
            Command::Serve(args) => cmd::serve(&globals, args).await,
            Command::Config(command) => cmd::config(&globals, command).await,
            Command::Replay(args) => cmd::replay(&globals, args).await,
            Command::Status(args) => cmd::status(&globals, args).await,
            Command::Calls(args) => cmd::calls(&globals, args).await,
            Command::Provision(args) => cmd::provision(&globals, args).await,
            Command::Verify(args) => cmd::verify(&globals, args).await,
            Command::Stats(args) => cmd::stats(&globals, args).await,
            Command::Bench(BenchCommand::CatchUp(args)) => {
                cmd::bench_catch_up(&globals, args).await
            }
            Command::Bench(BenchCommand::Delete(args)) => cmd::bench_delete(&globals, args).await,
            Command::Bench(BenchCommand::Replay(args)) => cmd::bench_replay(&globals, args).await,
            Command::Bench(BenchCommand::Publish(args)) => cmd::bench_publish(&globals, args).await,
            Command::Supervise { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) if refused => ExitCode::from(2),
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`ledger tail | head`): nothing more to say.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ledger: {}", one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause only where it adds to what was said.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut shown = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !shown.contains(&text) {
            shown.push_str(": ");
            shown.push_str(&text);
        }
        source = s.source();
    }
    shown.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_an_example_in_its_help() {
        let cli = super::Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
            let leaves: Vec<&clap::Command> = if sub.has_subcommands() {
                sub.get_subcommands().collect()
            } else {
                vec![sub]
            };
            for leaf in leaves {
                let help = leaf
                    .get_after_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if !help.contains("ledger ") {
                    missing.push(leaf.get_name().to_owned());
                }
            }
        }
        assert!(missing.is_empty(), "no example in --help: {missing:?}");
    }
}

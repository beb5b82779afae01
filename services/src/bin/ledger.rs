//! `ledger`: the Call Ledger command line. Parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledger_services::cli::{self, Format, Globals};

/// Call Ledger: an event-sourced record of who is on which call, across contact-centre sites.
#[derive(Debug, Parser)]
#[command(name = "ledger", version)]
struct Cli {
    /// NATS server URL (several may be given, separated by commas).
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    nats: String,
    /// Output format: a table for people, or JSON Lines for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the projector and command service of each named site until SIGINT or SIGTERM.
    Serve(cli::ServeArgs),
    /// Send one TDeleteFromConference and print the reply (exit status 2 when refused).
    Delete(cli::DeleteArgs),
    /// Every recorded TDeleteFromConference decision, in stream order.
    Audit(cli::AuditArgs),
    /// A site's three options: show them, or set one.
    #[command(subcommand)]
    Config(cli::ConfigCommand),
    /// Every stored event of a call in stream order, with the parties after it.
    Replay(cli::ReplayArgs),
    /// Ask a site's projector for its role and counters.
    Status(cli::StatusArgs),
    /// The calls in progress at a site, the quietest first (to find calls whose leaves never came).
    Calls(cli::CallsArgs),
    /// Create the streams and buckets of the contract when absent, and show them.
    Provision(cli::ProvisionArgs),
    /// Measure the ledger against raw async-nats on the same server (use a server of its own).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The projector's catch-up rate over a stream, next to a raw pull consumer.
    CatchUp(cli::CatchUpArgs),
    /// Accepted TDeleteFromConference latency, next to a raw publish with the same headers.
    Delete(cli::DeleteBenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.format);
    let globals = Globals {
        nats: cli.nats,
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
            Command::Delete(args) => cli::delete(&globals, args).await.map(|answer| {
                if answer == cli::Answer::Refused {
                    refused = true;
                }
            }),
            Command::Audit(args) => cli::audit(&globals, args).await,
            Command::Serve(args) => cli::serve(&globals, args).await,
            Command::Config(command) => cli::config(&globals, command).await,
            Command::Replay(args) => cli::replay(&globals, args).await,
            Command::Status(args) => cli::status(&globals, args).await,
            Command::Calls(args) => cli::calls(&globals, args).await,
            Command::Provision(args) => cli::provision(&globals, args).await,
            Command::Bench(BenchCommand::CatchUp(args)) => {
                cli::bench_catch_up(&globals, args).await
            }
            Command::Bench(BenchCommand::Delete(args)) => cli::bench_delete(&globals, args).await,
        }
    });
    match result {
        Ok(()) if refused => ExitCode::from(2),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut shown = e.to_string();
            eprintln!("ledger: {shown}");
            let mut source = std::error::Error::source(e.as_ref());
            while let Some(s) = source {
                // Most errors already quote their cause; print only what adds to it.
                let text = s.to_string();
                if !shown.contains(&text) {
                    eprintln!("  caused by: {text}");
                    shown = text;
                }
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

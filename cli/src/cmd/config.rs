//! `ledger config get|set|list`: the sites' options in `LEDGER_CONFIG`.

use std::io::Write;

use ledger_schemas::{ConfigKey, OptionName, Site, SiteOptions};

use super::{Globals, parse_site};
use crate::CliError;
use crate::output::Format;
use ledger_services::{StoreConfig, provision};

/// `ledger config` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Show a site's three options as in force (defaults where unset).
    #[command(after_help = "Example:\n  ledger config get --site SiteA")]
    Get {
        /// The site.
        #[arg(long, value_parser = parse_site)]
        site: Site,
    },
    /// The options of every site that has any set, as in force.
    #[command(after_help = "Example:\n  ledger config list --format json")]
    List,
    /// Set one option of a site; a value the option does not take is refused before writing.
    #[command(
        after_help = "Examples:\n  ledger config set --site SiteA TServer/sip-remote-del-from-conf true\n  ledger config set --site SiteA extrouter/use-data-from current"
    )]
    Set {
        /// The site.
        #[arg(long, value_parser = parse_site)]
        site: Site,
        /// `TServer.sip-enable-call-info`, `TServer.sip-remote-del-from-conf` or
        /// `extrouter.use-data-from` (the `/` form `TServer/sip-enable-call-info` works too).
        #[arg(value_parser = parse_option)]
        option: OptionName,
        /// The value: `true`/`false`, or a word for `extrouter.use-data-from` (`current` turns
        /// on Party Events propagation).
        value: String,
    },
}

fn parse_option(s: &str) -> Result<OptionName, String> {
    OptionName::parse(&s.replace('/', ".")).ok_or_else(|| {
        let known: Vec<_> = OptionName::ALL.iter().map(|o| o.as_str()).collect();
        format!("{s:?} is not one of {}", known.join(", "))
    })
}

/// `ledger config`.
///
/// # Errors
///
/// When NATS cannot be reached or the value is refused.
pub(crate) async fn config(g: &Globals, command: ConfigCommand) -> Result<(), CliError> {
    let ep = g.connect("ledger-config").await?;
    let kv = provision(&ep.nats.js, &StoreConfig::default())
        .await?
        .config;
    let site = match &command {
        ConfigCommand::Get { site } | ConfigCommand::Set { site, .. } => *site,
        ConfigCommand::List => return list(&kv, g.format).await,
    };
    if let ConfigCommand::Set { option, value, .. } = &command {
        // Checked with the services' own rule, so that a refused value never reaches them.
        SiteOptions::default().set(*option, value.as_bytes())?;
        let key = ConfigKey {
            site,
            option: *option,
        }
        .to_string();
        kv.put(key, value.clone().into_bytes().into()).await?;
    }
    let mut options = SiteOptions::default();
    let mut out = std::io::stdout().lock();
    if g.format == Format::Table {
        writeln!(out, "{:<34} {:<10} SOURCE", "OPTION", "VALUE")?;
    }
    for option in OptionName::ALL {
        let key = ConfigKey { site, option }.to_string();
        let stored = kv.get(&key).await?;
        let source = match &stored {
            Some(v) if options.set(option, v).is_ok() => "LEDGER_CONFIG",
            Some(_) => "default (stored value refused)",
            None => "default",
        };
        let value = options.value(option).to_owned();
        match g.format {
            Format::Json => writeln!(
                out,
                "{}",
                serde_json::json!({"site": site.as_str(), "option": option.as_str(), "value": value, "source": source})
            )?,
            _ => writeln!(out, "{:<34} {value:<10} {source}", option.as_str())?,
        }
    }
    Ok(())
}

/// Every site that has an option set, with its three options as in force.
async fn list(kv: &async_nats::jetstream::kv::Store, format: Format) -> Result<(), CliError> {
    let sites = ledger_services::sites_options(kv).await?;
    let mut out = std::io::stdout().lock();
    if format == Format::Table {
        writeln!(out, "{:<12} {:<34} VALUE", "SITE", "OPTION")?;
    }
    for (site, options) in sites {
        for option in OptionName::ALL {
            let value = options.value(option);
            match format {
                Format::Json => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"site": site.as_str(), "option": option.as_str(), "value": value})
                )?,
                _ => writeln!(out, "{:<12} {:<34} {value}", site.as_str(), option.as_str())?,
            }
        }
    }
    Ok(())
}

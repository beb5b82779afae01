//! Where the server comes from, as the `nats` CLI finds it: flags, then the environment (clap
//! reads both: a flag wins), then a NATS context (`--context`, `NATS_CONTEXT`, or the selected
//! one); for the server URL, then a running `ledger up` (its state file in the data folder),
//! else an embedded private nats-server that the command starts.

use std::path::PathBuf;
use std::time::Duration;

use ledger_services::{Connection, Nats, Secret};

use crate::CliError;
use crate::context::{self, Context};
use crate::embedded::{self, Embedded};

/// The connection flags every subcommand that talks to NATS takes (the `nats` CLI's names and
/// environment variables).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnArgs {
    /// NATS server URL(s), comma-separated [default: a NATS context, a running `ledger up`, or an
    /// embedded server].
    #[arg(
        short = 's',
        long = "server",
        visible_alias = "nats",
        env = "NATS_URL",
        global = true
    )]
    pub(crate) server: Option<String>,
    /// The NATS context to use (the `nats` CLI's contexts) [default: the selected one].
    #[arg(long, env = "NATS_CONTEXT", global = true)]
    pub(crate) context: Option<String>,
    /// Use no NATS context, not even the selected one.
    #[arg(long, global = true)]
    pub(crate) no_context: bool,
    /// User name (with --password), or a token alone.
    #[arg(long, env = "NATS_USER", global = true)]
    pub(crate) user: Option<String>,
    /// Password.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true, global = true)]
    pub(crate) password: Option<String>,
    /// Token.
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true, global = true)]
    pub(crate) token: Option<String>,
    /// User credentials file.
    #[arg(long, env = "NATS_CREDS", global = true)]
    pub(crate) creds: Option<PathBuf>,
    /// File holding the user's nkey seed.
    #[arg(long, env = "NATS_NKEY", global = true)]
    pub(crate) nkey: Option<PathBuf>,
    /// TLS client certificate.
    #[arg(long, env = "NATS_CERT", global = true)]
    pub(crate) tlscert: Option<PathBuf>,
    /// TLS client key.
    #[arg(long, env = "NATS_KEY", global = true)]
    pub(crate) tlskey: Option<PathBuf>,
    /// TLS certificate authority chain.
    #[arg(long, env = "NATS_CA", global = true)]
    pub(crate) tlsca: Option<PathBuf>,
    /// TLS handshake before the server's greeting.
    #[arg(long, global = true)]
    pub(crate) tlsfirst: bool,
    /// Time to wait to connect and for each answer, in seconds (or `500ms`, `5s`).
    #[arg(long, env = "NATS_TIMEOUT", global = true, value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
    /// Custom inbox prefix.
    #[arg(long, global = true)]
    pub(crate) inbox_prefix: Option<String>,
    /// JetStream domain.
    #[arg(long, global = true)]
    pub(crate) js_domain: Option<String>,
    /// Data folder of the embedded nats-server (and of `ledger up`'s state file)
    /// [default: $XDG_DATA_HOME/call-ledger, else ~/.local/share/call-ledger].
    #[arg(long, env = "LEDGER_DATA", global = true)]
    pub(crate) data: Option<PathBuf>,
}

/// `5`, `2.5`, `500ms`, `5s`, `1m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (5, 5s, 500ms, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// A connection and, when the command started one, its embedded server (stopped when dropped).
pub(crate) struct Endpoint {
    pub(crate) nats: Nats,
    /// The embedded server this command started, if any: it lives as long as the endpoint.
    _server: Option<Embedded>,
}

impl ConnArgs {
    /// The data folder: `--data`, else the user's data directory.
    pub(crate) fn data_dir(&self) -> Result<PathBuf, CliError> {
        if let Some(d) = &self.data {
            return Ok(d.clone());
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .ok_or("cannot tell the user's data directory (no HOME): give --data")?;
        Ok(base.join("call-ledger"))
    }

    /// The context in force, unless disabled.
    fn context(&self) -> Result<Option<(String, Context)>, CliError> {
        if self.no_context {
            return Ok(None);
        }
        let Some(dir) = nats_config_dir() else {
            return Ok(None);
        };
        Ok(context::load(&dir, self.context.as_deref())?)
    }

    /// The connection settings from the flags and environment, then the context; the URL is
    /// `None` when neither names a server.
    pub(crate) fn connection(&self, name: &str) -> Result<(Connection, Option<String>), CliError> {
        let ctx = self.context()?.map(|(_, c)| c).unwrap_or_default();
        let or = |flag: &Option<String>, ctx: &str| {
            flag.clone()
                .or_else(|| (!ctx.is_empty()).then(|| ctx.to_owned()))
        };
        let path = |flag: &Option<PathBuf>, ctx: &str| {
            flag.clone()
                .or_else(|| (!ctx.is_empty()).then(|| PathBuf::from(ctx)))
        };
        let url = or(&self.server, &ctx.url);
        let conn = Connection {
            servers: url.clone().unwrap_or_default(),
            name: name.to_owned(),
            user: or(&self.user, &ctx.user),
            password: or(&self.password, &ctx.password).map(Secret::new),
            token: or(&self.token, &ctx.token).map(Secret::new),
            creds: path(&self.creds, &ctx.creds),
            nkey: path(&self.nkey, &ctx.nkey),
            tls_cert: path(&self.tlscert, &ctx.cert),
            tls_key: path(&self.tlskey, &ctx.key),
            tls_ca: path(&self.tlsca, &ctx.ca),
            tls_first: self.tlsfirst || ctx.tls_first,
            timeout: self.timeout.unwrap_or(Duration::from_secs(5)),
            inbox_prefix: or(&self.inbox_prefix, &ctx.inbox_prefix),
            jetstream_domain: or(&self.js_domain, &ctx.jetstream_domain),
        };
        Ok((conn, url))
    }

    /// Connects as client `name` to the server named by the flags, the environment or a
    /// context; else to a running `ledger up` of the data folder; else to an embedded server it
    /// starts on the data folder (stopped when the endpoint is dropped).
    pub(crate) async fn connect(&self, name: &str) -> Result<Endpoint, CliError> {
        let (mut conn, url) = self.connection(name)?;
        if url.is_some() {
            let nats = conn.connect().await?;
            return Ok(Endpoint {
                nats,
                _server: None,
            });
        }
        let data = self.data_dir()?;
        if let Some(state) = embedded::running(&data) {
            conn.servers = state.url;
            let nats = conn.connect().await?;
            return Ok(Endpoint {
                nats,
                _server: None,
            });
        }
        let server = Embedded::start(&embedded::Options {
            data,
            port: None,
            state: true,
            command: name.trim_start_matches("ledger-").to_owned(),
        })?;
        conn.servers = server.url().to_owned();
        let nats = conn.connect().await?;
        Ok(Endpoint {
            nats,
            _server: Some(server),
        })
    }
}

/// The `nats` CLI's configuration folder, from the environment.
pub(crate) fn nats_config_dir() -> Option<PathBuf> {
    context::config_dir(
        std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_nats_cli() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("five").is_err());
        assert!(parse_duration("5h").is_err());
    }
}

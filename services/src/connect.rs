//! Connecting to NATS with a deployment's options (servers, credentials, TLS, inbox prefix,
//! JetStream domain), refusing servers too old for the contract.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event, ServerAddr, ServerError, jetstream};
use ledger_replay::History;

/// The oldest server the ledger runs on. 2.11 added `Nats-Expected-Last-Subject-Sequence-Subject`;
/// older servers accept the header but skip or misapply the per-call check.
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 11);

/// A secret (a password, a token): shown as `***` by `Debug`, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to reach and authenticate to NATS: the options of the `nats` CLI's connection
/// conventions that the ledger honours. The binary builds it from flags, the environment and
/// NATS contexts; this library reads none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// One server URL, or several separated by commas. Default `nats://127.0.0.1:4222`.
    pub servers: String,
    /// The client's name, shown by the server's monitoring. Default `ledger`.
    pub name: String,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// Token.
    pub token: Option<Secret>,
    /// A credentials file (JWT and nkey seed).
    pub creds: Option<PathBuf>,
    /// A file holding an nkey seed.
    pub nkey: Option<PathBuf>,
    /// Client certificate (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// Client certificate key.
    pub tls_key: Option<PathBuf>,
    /// Certificate authorities to trust.
    pub tls_ca: Option<PathBuf>,
    /// TLS handshake before the server's greeting.
    pub tls_first: bool,
    /// How long to wait to connect, and for each request. Default 5 s.
    pub timeout: Duration,
    /// A custom inbox prefix (replies are received under it).
    pub inbox_prefix: Option<String>,
    /// The JetStream domain to use.
    pub jetstream_domain: Option<String>,
}

impl Default for Connection {
    fn default() -> Self {
        Self {
            servers: "nats://127.0.0.1:4222".to_owned(),
            name: "ledger".to_owned(),
            user: None,
            password: None,
            token: None,
            creds: None,
            nkey: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            tls_first: false,
            timeout: Duration::from_secs(5),
            inbox_prefix: None,
            jetstream_domain: None,
        }
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets show as `***` (see `Secret`); file paths are not secrets.
        f.debug_struct("Connection")
            .field("servers", &self.servers)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("token", &self.token)
            .field("creds", &self.creds)
            .field("nkey", &self.nkey)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_ca", &self.tls_ca)
            .field("tls_first", &self.tls_first)
            .field("timeout", &self.timeout)
            .field("inbox_prefix", &self.inbox_prefix)
            .field("jetstream_domain", &self.jetstream_domain)
            .finish()
    }
}

impl Connection {
    /// A connection to `servers` with the defaults otherwise.
    pub fn to(servers: impl Into<String>) -> Self {
        Self {
            servers: servers.into(),
            ..Self::default()
        }
    }

    /// Sets the client's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Connects and checks the server's version.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] when a file cannot be read, the server cannot be reached or refuses
    /// the credentials, or is too old.
    pub async fn connect(&self) -> Result<Nats, ConnectError> {
        let addrs = self
            .servers
            .split(',')
            .map(|u| {
                u.trim()
                    .parse::<ServerAddr>()
                    .map_err(|source| ConnectError::InvalidUrl {
                        url: u.to_owned(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut options = match &self.creds {
            Some(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| ConnectError::File {
                    what: "credentials",
                    path: path.clone(),
                    source,
                })?,
            None => ConnectOptions::new(),
        };
        options = options
            .name(&self.name)
            .connection_timeout(self.timeout)
            .request_timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        } else if let Some(user) = &self.user {
            // The `nats` CLI reads a user without a password as a token.
            options = options.token(user.clone());
        }
        if let Some(token) = &self.token {
            options = options.token(token.expose().to_owned());
        }
        if let Some(path) = &self.nkey {
            let seed = std::fs::read_to_string(path).map_err(|source| ConnectError::File {
                what: "nkey seed",
                path: path.clone(),
                source,
            })?;
            options = options.nkey(seed.trim().to_owned());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        if self.tls_first {
            options = options.tls_first();
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        // What the server says about the connection goes to the log: a permissions violation
        // (a publish or subscription this user may not make) is otherwise silent.
        options = options.event_callback(|event| async move {
            match event {
                Event::ServerError(ServerError::Other(e))
                    if e.contains("Permissions Violation") =>
                {
                    tracing::error!("the server refused an operation: {e}");
                }
                Event::ServerError(e) => tracing::warn!("the server reports an error: {e}"),
                Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
                Event::Connected => tracing::info!("connected to NATS"),
                Event::SlowConsumer(sid) => {
                    tracing::warn!(
                        sid,
                        "a subscription fell behind; the client dropped messages"
                    );
                }
                other => tracing::debug!("NATS connection: {other}"),
            }
        });
        let client = options
            .connect(addrs)
            .await
            .map_err(|source| ConnectError::Unreachable {
                url: self.servers.clone(),
                source,
            })?;
        check_version(&client, &self.servers)?;
        Ok(Nats::new(client, self.jetstream_domain.as_deref()))
    }
}

/// A connection to NATS: the client, JetStream on it, and history read through it, all in the
/// JetStream domain the connection named.
#[derive(Debug, Clone)]
pub struct Nats {
    /// The client.
    pub client: Client,
    /// JetStream.
    pub js: jetstream::Context,
    /// Reading stored messages back with batched direct gets.
    pub history: History,
}

impl Nats {
    /// JetStream and history on `client`, in `domain` (or the account's own JetStream).
    pub fn new(client: Client, domain: Option<&str>) -> Self {
        match domain {
            Some(domain) => Self {
                js: jetstream::with_domain(client.clone(), domain),
                history: History::with_api_prefix(client.clone(), format!("$JS.{domain}.API")),
                client,
            },
            None => Self {
                js: jetstream::new(client.clone()),
                history: History::new(client.clone()),
                client,
            },
        }
    }
}

/// Why the ledger could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL (or one of a comma-separated list) is not a NATS server address.
    #[error("{url:?} is not a NATS server URL: {source}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is invalid.
        #[source]
        source: std::io::Error,
    },
    /// A credentials, nkey or certificate file could not be read.
    #[error("cannot read the {what} file {path:?}: {source}")]
    File {
        /// What the file holds.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server could not be reached, or refused the credentials.
    #[error("cannot connect to NATS at {url}: {source}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The server is older than [`MIN_SERVER_VERSION`].
    #[error(
        "NATS server at {url} is version {version}; Call Ledger needs 2.11 or newer, because older \
         servers skip or misapply Nats-Expected-Last-Subject-Sequence-Subject, the per-call \
         optimistic concurrency check"
    )]
    ServerTooOld {
        /// The URL.
        url: String,
        /// The version it reported.
        version: String,
    },
}

/// Parses `major.minor` from a server version such as `2.15.1` or `v2.11.0-beta`.
pub fn parse_version(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Refuses a client connected to a server older than [`MIN_SERVER_VERSION`].
///
/// # Errors
///
/// [`ConnectError::ServerTooOld`].
pub fn check_version(client: &Client, url: &str) -> Result<(), ConnectError> {
    let version = client.server_info().version;
    match parse_version(&version) {
        Some(v) if v >= MIN_SERVER_VERSION => Ok(()),
        _ => Err(ConnectError::ServerTooOld {
            url: url.to_owned(),
            version,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15)));
        assert_eq!(parse_version("v2.11.0-beta.1"), Some((2, 11)));
        assert!(parse_version("2.9.10").unwrap() < MIN_SERVER_VERSION);
        assert!(parse_version("2.11.0").unwrap() >= MIN_SERVER_VERSION);
        assert!(parse_version("3.0.0").unwrap() >= MIN_SERVER_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Connection {
            user: Some("agent".into()),
            password: Some(Secret::new("hunter2")),
            token: Some(Secret::new("s3cr3t-token")),
            ..Connection::to("nats://example:4222")
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cr3t-token"),
            "{shown}"
        );
        assert!(shown.contains("agent") && shown.contains("***"), "{shown}");
    }
}

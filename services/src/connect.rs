//! Connecting to NATS, refusing servers too old for the contract.

use async_nats::{Client, ConnectOptions, ServerAddr};

/// The oldest server the ledger runs on. 2.11 added `Nats-Expected-Last-Subject-Sequence-Subject`;
/// older servers accept the header but skip or misapply the per-call check.
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 11);

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
    /// The server could not be reached.
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

/// Connects to `url` (one URL, or several separated by commas) as client `name` and checks the
/// server's version.
///
/// # Errors
///
/// [`ConnectError`] when the server cannot be reached or is too old.
pub async fn connect(url: &str, name: &str) -> Result<Client, ConnectError> {
    let addrs = url
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
    let client = ConnectOptions::new()
        .name(name)
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(addrs)
        .await
        .map_err(|source| ConnectError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
    check_version(&client, url)?;
    Ok(client)
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
}

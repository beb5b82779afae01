//! Call Ledger's services: thin tokio shells over NATS around the pure core.
//!
//! - [`connect`] connects and refuses servers older than 2.11.
//! - [`provision`] creates the contract's streams and buckets when absent.
//! - [`cli`] holds the subcommands of the `ledger` binary.

pub mod cli;
mod connect;
mod provision;

pub use connect::{ConnectError, MIN_SERVER_VERSION, check_version, connect, parse_version};
pub use provision::{ProvisionError, StoreConfig, Stores, ledger_stream_config, provision};

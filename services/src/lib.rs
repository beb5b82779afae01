//! Call Ledger's services: thin tokio shells over NATS around the pure core.
//!
//! - [`Connection`] connects with a deployment's options and refuses servers older than 2.11.
//! - [`provision`] creates the contract's streams and buckets when absent.
//! - [`Publisher`] publishes party events for producers.
//! - [`site`] is a site's state between processes (floor, index of calls in progress) and how
//!   a process re-folds its calls from it; the projector and the command service use it as
//!   peers, and neither uses the other.
//! - [`projector`] keeps a site's LCTParty lists and records its option changes; [`lease`]
//!   makes one instance per site lead, decided by the server; [`fence`] makes every write a
//!   replaced leader could still attempt conditional.
//! - [`watch_options`] keeps a site's options current for the command service.
//! - [`command`] serves TDeleteFromConference with optimistic concurrency and the audit.
//! - [`stats`] keeps a site's statistics live in KV, recounted by the same fold as history.
//! - [`serve`] runs the services of several sites until a shutdown signal.

mod clock;
pub mod command;
mod config;
mod connect;
pub mod fence;
pub mod lease;
mod options;
pub mod projector;
mod provision;
mod publish;
mod serve;
pub mod site;
pub mod stats;
mod status;

pub use clock::now_us;
pub use config::{Config, MAX_BATCH};
pub use connect::{
    ConnectError, Connection, MIN_SERVER_VERSION, Nats, Secret, check_version, parse_version,
};
pub use options::{OptionsError, apply_entry, sites_options, watch_options};
pub use provision::{
    PROJECTOR_BUCKET, ProvisionError, StoreConfig, Stores, ledger_stream_config, provision,
};
pub use publish::{PendingAck, PublishError, Published, Publisher, Report};
pub use serve::{ServeError, ServeHandle, serve, status_subject};
pub use status::{Counters, Role, Status, statuses};

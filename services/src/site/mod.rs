//! A site's view on the NATS side, shared by the projector and the command service as peers:
//! where a site's state is kept between processes, and how a process rebuilds its fold of the
//! site's calls from it.
//!
//! - [`floor`]: the stream sequence up to which the site's events are handled.
//! - [`index`]: the calls in progress as of the floor.
//! - [`recover`]: re-folding those calls up to the floor, before following the stream.
//! - [`keys`]: what a bucket holds now, key by key, for fenced writers.
//!
//! The fold itself is pure and lives in the core ([`ledger_core::Fold`]).

pub mod floor;
pub mod index;
pub mod keys;
mod recover;

pub use floor::{Floor, read_floor};
pub use index::{Indexed, index_key, indexed};
pub use recover::recover;

/// Why a site's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// NATS or a bucket could not be reached.
    #[error("{what}: {source}")]
    Unavailable {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
    /// History could not be read back.
    #[error(transparent)]
    Read(#[from] ledger_replay::ReadError),
}

impl SiteError {
    /// Wraps a NATS error with what was being done.
    pub fn unavailable(what: &'static str) -> impl FnOnce(async_nats::Error) -> Self {
        move |source| Self::Unavailable { what, source }
    }
}

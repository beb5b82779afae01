//! Benchmarks of the ledger against raw async-nats on the same server, in the same run,
//! reported as ratios. Run them against a nats-server of their own: they leave their synthetic
//! events in streams that refuse purges.
//!
//! - [`catch_up`]: the projector's catch-up rate next to a raw pull consumer.
//! - [`delete_latency`]: accepted TDeleteFromConference latency next to a raw publish with the
//!   same optimistic-concurrency headers.

mod catch_up;
mod delete;

pub(crate) use catch_up::{CatchUp, catch_up};
pub(crate) use delete::{DeleteLatency, delete_latency};

/// Boxed error of the benchmarks.
pub(crate) type BenchError = Box<dyn std::error::Error + Send + Sync>;

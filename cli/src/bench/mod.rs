//! Benchmarks of the ledger against raw async-nats on the same server, in the same run,
//! reported as ratios. Run them against a nats-server of their own: they leave their synthetic
//! events in streams that refuse purges.
//!
//! - [`catch_up`]: the projector's catch-up rate next to async-nats' ordered consumer and a bare
//!   pull consumer with the projector's window.
//! - [`delete_latency`]: accepted TDeleteFromConference latency next to a raw publish with the
//!   same optimistic-concurrency headers.
//! - [`publish`]: the library's producer API next to raw publishes with `Nats-Msg-Id`.
//! - [`replay`]: one call read back and folded, on streams of growing size, next to the raw
//!   batched direct get of the same messages.

mod catch_up;
mod delete;
mod publish;
mod replay;
mod traffic;

pub(crate) use catch_up::{CatchUp, catch_up};
pub(crate) use delete::{DeleteLatency, delete_latency};
pub(crate) use publish::{PublishBench, publish};
pub(crate) use replay::{ReplayBench, replay};

/// Boxed error of the benchmarks.
pub(crate) type BenchError = Box<dyn std::error::Error + Send + Sync>;

//! Benchmarks of the ledger against raw async-nats on the same server, in the same run,
//! reported as ratios. Run them against a nats-server of their own: they leave their synthetic
//! events in streams that refuse purges.
//!
//! - [`catch_up`]: the projector's catch-up rate next to a raw pull consumer.
//! - [`delete_latency`]: accepted TDeleteFromConference latency next to a raw publish with the
//!   same optimistic-concurrency headers.

mod catch_up;
mod delete;

use indicatif::{ProgressBar, ProgressStyle};

pub use catch_up::{CatchUp, CatchUpReport, Rate, catch_up};
pub use delete::{DeleteLatency, Latencies, LatencyReport, delete_latency};

/// Boxed error of the benchmarks.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// A progress bar on standard error, or a hidden one.
fn bar(progress: bool, len: u64, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

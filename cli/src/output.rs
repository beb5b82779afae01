//! Output for people and scripts: formats, readable times, progress bars on a terminal only,
//! logs on standard error.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people; times as UTC timestamps.
    Table,
    /// One JSON object a line, UUIDs as text, times in microseconds since the Unix epoch.
    Json,
}

/// Whether standard error is a terminal (progress bars, colours).
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Logs go to standard error through `tracing`: `RUST_LOG` filters them (default `info`, or
/// `warn` for commands whose output is the point); with `--format json` they are JSON too; no
/// ANSI escapes unless standard error is a terminal.
pub(crate) fn init_logging(format: Format, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr_is_terminal());
    let _ = match format {
        Format::Json => builder.json().try_init(),
        Format::Table => builder.try_init(),
    };
}

/// A progress bar on standard error when it is a terminal and `wanted`; else a hidden one.
pub(crate) fn bar(wanted: bool, len: u64, what: &str) -> ProgressBar {
    if !wanted || !stderr_is_terminal() {
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

/// Microseconds since the Unix epoch as a readable UTC time: `2026-11-27 09:30:00.123456 UTC`.
pub(crate) fn time(us: u64) -> String {
    match i64::try_from(us)
        .ok()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
    {
        Some(t) => t.strftime("%Y-%m-%d %H:%M:%S%.6f UTC").to_string(),
        None => format!("{us} µs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(
            time(1_764_235_800_123_456),
            "2025-11-27 09:30:00.123456 UTC"
        );
        assert_eq!(time(0), "1970-01-01 00:00:00.000000 UTC");
    }
}

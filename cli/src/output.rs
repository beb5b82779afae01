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
    /// Comma-separated values with a header line, the JSON keys as columns (`ledger audit`).
    Csv,
    /// An LCTParty list as the EventUserEvent's key-value pairs (`ledger lct`).
    Genesys,
}

impl Format {
    /// Refuses a format a command does not print.
    pub(crate) fn only(self, allowed: &[Format], command: &str) -> Result<Self, String> {
        if allowed.contains(&self) {
            Ok(self)
        } else {
            let names: Vec<&str> = allowed.iter().map(|f| f.name()).collect();
            Err(format!(
                "`ledger {command}` prints {}, not {}",
                names.join(" or "),
                self.name()
            ))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Genesys => "genesys",
        }
    }
}

/// A stream sequence or a time, as `<seq|time>` options take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// A stream sequence.
    Seq(u64),
    /// Microseconds since the Unix epoch.
    Time(u64),
}

/// Parses `<seq|time>`: a bare integer is a stream sequence; a time is RFC 3339
/// (`2026-11-27T09:30:00Z`, or with an offset).
pub(crate) fn parse_position(s: &str) -> Result<Position, String> {
    if let Ok(seq) = s.parse::<u64>() {
        return Ok(Position::Seq(seq));
    }
    parse_time(s).map(Position::Time)
}

/// Parses an RFC 3339 time into microseconds since the Unix epoch.
pub(crate) fn parse_time(s: &str) -> Result<u64, String> {
    let t: jiff::Timestamp = s.parse().map_err(|e| {
        format!(
            "{s:?} is neither a stream sequence nor an RFC 3339 time (2026-11-27T09:30:00Z): {e}"
        )
    })?;
    u64::try_from(t.as_microsecond()).map_err(|_| format!("{s:?} is before 1970"))
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv_field(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
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
        Format::Table | Format::Csv | Format::Genesys => builder.try_init(),
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

/// A site's LCTParty list as a table: the parties in order (`N`), then the supervisors (`S<n>`)
/// with their mode and the party they monitor.
///
/// # Errors
///
/// When `out` cannot be written.
pub(crate) fn lct_table(
    out: &mut impl std::io::Write,
    list: &ledger_schemas::LctList,
) -> std::io::Result<()> {
    writeln!(
        out,
        "  {:<3} {:<36}  {:<14} {:<8} ROLE",
        "N", "PARTY ID", "DN", "LOCATION"
    )?;
    for (n, p) in list.parties.iter().enumerate() {
        writeln!(
            out,
            "  {n:<3} {:<36}  {:<14} {:<8} {}",
            p.party,
            p.dn,
            p.location,
            p.role.as_str()
        )?;
    }
    for (n, s) in list.supervisors.iter().enumerate() {
        let monitored = s
            .monitors
            .and_then(|m| list.parties.iter().find(|p| p.party == m))
            .map(|p| format!("{}@{}", p.dn, p.location))
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "  S{n:<2} {:<36}  {:<14} {:<8} supervisor ({}, monitoring {monitored})",
            s.party,
            s.dn,
            s.location,
            s.mode.as_str()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_sequences_or_rfc3339_times() {
        assert_eq!(parse_position("42"), Ok(Position::Seq(42)));
        assert_eq!(
            parse_position("2025-11-27T09:30:00Z"),
            Ok(Position::Time(1_764_235_800_000_000))
        );
        assert_eq!(
            parse_position("2025-11-27T10:30:00+01:00"),
            Ok(Position::Time(1_764_235_800_000_000))
        );
        assert!(parse_position("yesterday").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field(&serde_json::json!("a,b")), "\"a,b\"");
        assert_eq!(
            csv_field(&serde_json::json!("say \"hi\"")),
            "\"say \"\"hi\"\"\""
        );
        assert_eq!(csv_field(&serde_json::json!(null)), "");
        assert_eq!(csv_field(&serde_json::json!(42)), "42");
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(
            time(1_764_235_800_123_456),
            "2025-11-27 09:30:00.123456 UTC"
        );
        assert_eq!(time(0), "1970-01-01 00:00:00.000000 UTC");
    }
}

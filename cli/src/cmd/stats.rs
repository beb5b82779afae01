//! `ledger stats`: each site's figures over time, as the live projection stored them or
//! recounted from history (`--recount`), in UTC or a time zone, as a table, JSON Lines, CSV, a
//! chart in the terminal or an SVG file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ledger_core::stats::{Width, regroup};
use ledger_replay::stats::{recount, stored_figures, stored_now};
use ledger_schemas::{CallNow, Counts, FIGURES, Figures, Site, SiteNow};
use ledger_services::Stores;

use super::{Globals, parse_site};
use crate::CliError;
use crate::chart::{self, Series};
use crate::output::{Format, bar, csv_field, parse_time, time};

/// Arguments of `ledger stats`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StatsArgs {
    /// One site's figures (default: every site).
    #[arg(long, value_parser = parse_site)]
    pub(crate) site: Option<Site>,
    /// From this time on (RFC 3339), rounded down to its interval.
    #[arg(long, value_parser = parse_time)]
    pub(crate) since: Option<u64>,
    /// Before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub(crate) until: Option<u64>,
    /// The interval: 15m, 30m, hour or day.
    #[arg(long, default_value = "hour")]
    pub(crate) by: Width,
    /// The time zone intervals are read in (`Europe/Paris`); default UTC.
    #[arg(long, default_value = "UTC")]
    pub(crate) tz: String,
    /// Recount from the start of the streams instead of reading the live figures.
    #[arg(long)]
    pub(crate) recount: bool,
    /// Draw this figure over time in the terminal (one of the JSON keys, e.g. `observed`).
    #[arg(long, value_name = "FIGURE")]
    pub(crate) chart: Option<String>,
    /// Write the figure of `--chart` (default `calls`) as an SVG line chart to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) svg: Option<PathBuf>,
    /// The real-time state instead: calls, conferences and observed calls in progress, and
    /// every observed call with its agents and observers.
    #[arg(long, conflicts_with_all = ["recount", "chart", "svg", "since", "until"])]
    pub(crate) now: bool,
}

/// One row: a site's figures over one interval.
struct Row {
    site: Site,
    /// The interval's start.
    start: jiff::Zoned,
    counts: Counts,
}

/// `ledger stats`.
///
/// # Errors
///
/// When NATS cannot be reached, the streams cannot be read, or an argument is wrong.
pub(crate) async fn stats(g: &Globals, args: StatsArgs) -> Result<(), CliError> {
    let format = g.format;
    let figure = args.chart.clone().unwrap_or_else(|| "calls".into());
    if !FIGURES.contains(&figure.as_str()) {
        return Err(format!("--chart {figure:?}: the figures are {}", FIGURES.join(", ")).into());
    }
    let tz = if args.tz == "UTC" {
        TimeZone::UTC
    } else {
        TimeZone::get(&args.tz).map_err(|e| format!("--tz {:?}: {e}", args.tz))?
    };
    let ep = g.connect("ledger-stats").await?;
    let nats = &ep.nats;
    let stores = Stores::open(&nats.js)
        .await
        .map_err(|_| "the ledger's streams and buckets not found: run `ledger serve` first")?;
    if args.now {
        if format == Format::Csv {
            return Err("`ledger stats --now` prints table or json".into());
        }
        let (sites, calls) = stored_now(&nats.history, args.site).await?;
        return print_now(&mut std::io::stdout().lock(), format, &sites, &calls);
    }
    let figures: Vec<Figures> = if args.recount {
        let progress = bar(true, 0, "recount");
        let stats = recount(
            stores.events.clone(),
            stores.audit.clone(),
            |done, total| {
                progress.set_length(total);
                progress.set_position(done);
            },
        )
        .await?;
        progress.finish_and_clear();
        let c = stats.counters();
        if c.events.undecodable + c.audit_undecodable > 0 {
            tracing::warn!(
                events = c.events.undecodable,
                audit = c.audit_undecodable,
                "messages that do not decode were skipped"
            );
        }
        stats
            .figures()
            .filter(|f| args.site.is_none_or(|s| s == f.site))
            .collect()
    } else {
        let (figures, bad) = stored_figures(&nats.history, args.site).await?;
        if bad > 0 {
            tracing::warn!(
                values = bad,
                "stored figures that do not decode were skipped"
            );
        }
        figures
    };
    let interval = |us: u64| interval_start(us, args.by, &tz);
    // Whole intervals in the zone: --since from the start of its interval, --until to the end
    // of its interval.
    let since = args.since.map_or(i64::MIN, interval);
    let until = args.until.map_or(i64::MAX, |u| {
        interval(u) + i64::from(interval(u) < u as i64) * args.by.us() as i64
    });
    let selected = figures.into_iter().filter(|f| {
        let i = interval(f.start);
        i >= since && i < until
    });
    let rows = rows(regroup(selected, interval), &tz)?;
    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.svg {
        let svg = chart::svg(&series(&rows, &figure), &figure, args.by, &args.tz);
        std::fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "SVG chart written");
    }
    if args.chart.is_some() {
        chart::terminal(&mut out, &series(&rows, &figure), &figure)?;
        return Ok(());
    }
    match format {
        Format::Json => {
            for r in &rows {
                writeln!(out, "{}", json(r, args.by))?;
            }
        }
        Format::Csv => {
            let header = ["site", "start", "start_local", "by"]
                .into_iter()
                .chain(FIGURES)
                .collect::<Vec<_>>();
            writeln!(out, "{}", header.join(","))?;
            for r in &rows {
                let v = json(r, args.by);
                let line: Vec<String> = header
                    .iter()
                    .map(|k| {
                        if *k == "refused" {
                            r.counts.refused_total().to_string()
                        } else {
                            csv_field(v.get(*k).unwrap_or(&serde_json::Value::Null))
                        }
                    })
                    .collect();
                writeln!(out, "{}", line.join(","))?;
            }
        }
        _ => table(&mut out, &rows)?,
    }
    Ok(())
}

/// The start of the interval of `by` holding `us`, in `tz`, as UTC microseconds: days start at
/// the zone's midnight, shorter intervals on the zone's clock (two intervals for the hour that
/// repeats when clocks go back).
fn interval_start(us: u64, by: Width, tz: &TimeZone) -> i64 {
    let utc = i64::try_from(us).unwrap_or(i64::MAX);
    let Ok(t) = Timestamp::from_microsecond(utc) else {
        return utc;
    };
    let zoned = t.to_zoned(tz.clone());
    let (unit, increment) = match by {
        Width::Day => {
            return zoned
                .start_of_day()
                .map_or(utc, |z| z.timestamp().as_microsecond());
        }
        Width::Hour => (jiff::Unit::Hour, 1),
        Width::Min30 => (jiff::Unit::Minute, 30),
        Width::Min15 => (jiff::Unit::Minute, 15),
    };
    let start = zoned.round(
        jiff::ZonedRound::new()
            .smallest(unit)
            .increment(increment)
            .mode(jiff::RoundMode::Trunc),
    );
    start.map_or(utc, |z| z.timestamp().as_microsecond())
}

fn rows(grouped: BTreeMap<(Site, i64), Counts>, tz: &TimeZone) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::with_capacity(grouped.len());
    for ((site, utc), counts) in grouped {
        let start = Timestamp::from_microsecond(utc)
            .map_err(|e| format!("a time out of range: {e}"))?
            .to_zoned(tz.clone());
        rows.push(Row {
            site,
            start,
            counts,
        });
    }
    rows.sort_by_key(|r| (r.start.timestamp(), r.site));
    Ok(rows)
}

fn series(rows: &[Row], figure: &str) -> Vec<Series> {
    let mut by_site: BTreeMap<Site, Vec<(i64, String, u64)>> = BTreeMap::new();
    for r in rows {
        by_site.entry(r.site).or_default().push((
            r.start.timestamp().as_second(),
            r.start.strftime("%Y-%m-%d %H:%M").to_string(),
            r.counts.figure(figure).unwrap_or(0),
        ));
    }
    by_site
        .into_iter()
        .map(|(site, points)| Series {
            name: site.to_string(),
            points,
        })
        .collect()
}

fn json(r: &Row, by: Width) -> serde_json::Value {
    let c = &r.counts;
    serde_json::json!({
        "site": r.site.as_str(),
        "start": r.start.timestamp().as_microsecond(),
        "start_local": r.start.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        "by": by.as_str(),
        "calls": c.calls,
        "conferences": c.conferences,
        "observed": c.observed,
        "call_us": c.call_us,
        "conference_us": c.conference_us,
        "observed_us": c.observed_us,
        "observed_mute_us": c.observed_mute_us,
        "observed_coach_us": c.observed_coach_us,
        "observed_connect_us": c.observed_connect_us,
        "observed_normal_us": c.observed_normal_us,
        "deletes_local": c.deletes_local,
        "deletes_remote": c.deletes_remote,
        "refused": c.refused,
    })
}

/// The real-time state: a line per site, then every observed call (JSON: every call).
fn print_now(
    out: &mut impl Write,
    format: Format,
    sites: &[SiteNow],
    calls: &[CallNow],
) -> Result<(), CliError> {
    if format != Format::Table {
        for s in sites {
            let line = serde_json::json!({
                "type": "site", "site": s.site.as_str(), "seq": s.seq, "ts": s.ts,
                "calls": s.calls, "conferences": s.conferences, "observed": s.observed,
            });
            writeln!(out, "{line}")?;
        }
        for c in calls {
            let line = serde_json::json!({
                "type": "call", "site": c.site.as_str(), "call": c.call.to_string(),
                "seq": c.seq, "ts": c.ts, "conference": c.conference, "observed": c.observed,
                "agents": c.agents.iter().map(|a| serde_json::json!({
                    "party": a.party.to_string(), "dn": a.dn.as_str(), "observed": a.observed,
                })).collect::<Vec<_>>(),
                "observers": c.observers.iter().map(|o| serde_json::json!({
                    "party": o.party.to_string(), "dn": o.dn.as_str(),
                    "location": o.location.as_str(), "mode": o.mode.as_str(),
                    "monitors": o.monitors.map(|m| m.to_string()),
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<8} {:>6} {:>6} {:>8}  AS OF",
        "SITE", "CALLS", "CONF", "OBSERVED"
    )?;
    for s in sites {
        writeln!(
            out,
            "{:<8} {:>6} {:>6} {:>8}  {} (seq {})",
            s.site.as_str(),
            s.calls,
            s.conferences,
            s.observed,
            time(s.ts),
            s.seq
        )?;
    }
    let observed: Vec<&CallNow> = calls.iter().filter(|c| c.observed).collect();
    if observed.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nObserved now:")?;
    for c in observed {
        let agents: Vec<&str> = c.agents.iter().map(|a| a.dn.as_str()).collect();
        let observers: Vec<String> = c
            .observers
            .iter()
            .map(|o| format!("{}@{} ({})", o.dn, o.location, o.mode.as_str()))
            .collect();
        writeln!(
            out,
            "  {:<8} call {}  agents {}  observed by {}",
            c.site.as_str(),
            c.call,
            if agents.is_empty() {
                "-".to_owned()
            } else {
                agents.join(", ")
            },
            observers.join(", ")
        )?;
    }
    Ok(())
}

/// A duration for people: `1h 02m 03s`, `12m 30s`, `45s`.
fn duration(us: u64) -> String {
    let s = us / 1_000_000;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

fn table(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<22} {:<8} {:>6} {:>6} {:>8} {:>12} {:>12} {:>12} {:>7} {:>7} {:>7}",
        "START",
        "SITE",
        "CALLS",
        "CONF",
        "OBSERVED",
        "CALL TIME",
        "CONF TIME",
        "OBS TIME",
        "DEL LOC",
        "DEL REM",
        "REFUSED"
    )?;
    for r in rows {
        let c = &r.counts;
        writeln!(
            out,
            "{:<22} {:<8} {:>6} {:>6} {:>8} {:>12} {:>12} {:>12} {:>7} {:>7} {:>7}",
            r.start.strftime("%Y-%m-%d %H:%M %Z").to_string(),
            r.site.as_str(),
            c.calls,
            c.conferences,
            c.observed,
            duration(c.call_us),
            duration(c.conference_us),
            duration(c.observed_us),
            c.deletes_local,
            c.deletes_remote,
            c.refused_total()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_start_on_the_zones_clock() {
        let paris = TimeZone::get("Europe/Paris").unwrap_or(TimeZone::UTC);
        let us = |t: &str| t.parse::<Timestamp>().map_or(0, |t| t.as_microsecond());
        // 2026-11-26T09:45Z is 10:45 in Paris.
        let slot = us("2026-11-26T09:45:00Z") as u64;
        for (width, zone, start) in [
            (Width::Hour, &paris, "2026-11-26T09:00:00Z"),
            (Width::Min30, &paris, "2026-11-26T09:30:00Z"),
            (Width::Min15, &paris, "2026-11-26T09:45:00Z"),
            (Width::Day, &paris, "2026-11-25T23:00:00Z"),
            (Width::Day, &TimeZone::UTC, "2026-11-26T00:00:00Z"),
        ] {
            assert_eq!(
                interval_start(slot, width, zone),
                us(start),
                "{width:?} in {zone:?}"
            );
        }
        // Clocks go back at 03:00 on 2026-10-25: the two 02:00 hours are two intervals.
        let first = us("2026-10-25T00:30:00Z") as u64;
        let second = us("2026-10-25T01:30:00Z") as u64;
        assert_ne!(
            interval_start(first, Width::Hour, &paris),
            interval_start(second, Width::Hour, &paris)
        );
    }

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(duration(45_000_000), "45s");
        assert_eq!(duration(750_000_000), "12m 30s");
        assert_eq!(duration(3_723_000_000), "1h 02m 03s");
    }
}

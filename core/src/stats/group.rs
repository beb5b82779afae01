//! Figures over longer intervals than a slot, in UTC or local time: a sum of slots.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ledger_schemas::{Counts, Figures, SLOT_US, Site};

/// The width of a reporting interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Width {
    /// 15 minutes (one slot).
    Min15,
    /// 30 minutes.
    Min30,
    /// An hour.
    Hour,
    /// A day.
    Day,
}

impl Width {
    /// The width in microseconds.
    pub fn us(self) -> u64 {
        match self {
            Self::Min15 => SLOT_US,
            Self::Min30 => 2 * SLOT_US,
            Self::Hour => 4 * SLOT_US,
            Self::Day => 96 * SLOT_US,
        }
    }

    /// The name given on the command line: `15m`, `30m`, `hour`, `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min15 => "15m",
            Self::Min30 => "30m",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

impl fmt::Display for Width {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A width that is not one of `15m`, `30m`, `hour`, `day`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an interval: use 15m, 30m, hour or day")]
pub struct UnknownWidth(String);

impl FromStr for Width {
    type Err = UnknownWidth;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "15m" | "15min" => Ok(Self::Min15),
            "30m" | "30min" => Ok(Self::Min30),
            "hour" | "1h" | "60m" => Ok(Self::Hour),
            "day" | "1d" => Ok(Self::Day),
            other => Err(UnknownWidth(other.to_owned())),
        }
    }
}

impl Width {
    /// The start of the interval holding `start` (a slot's start, UTC microseconds) in a zone
    /// whose offset from UTC is `offset_us` there, as UTC microseconds. For a zone with daylight
    /// saving time, give each slot its own offset (the two hours of a night when clocks go back
    /// are then two intervals, as they should be) and take the day's start from the zone.
    pub fn start_at_offset(self, start: u64, offset_us: i64) -> i64 {
        let w = self.us() as i64;
        let local = start as i64 + offset_us;
        local.div_euclid(w) * w - offset_us
    }
}

/// Sums slots into intervals: `interval(start)` is the start of the interval holding the slot
/// that starts at `start` (UTC microseconds), as UTC microseconds (see
/// [`Width::start_at_offset`]). Keys are the site and that start.
pub fn regroup(
    figures: impl IntoIterator<Item = Figures>,
    interval: impl Fn(u64) -> i64,
) -> BTreeMap<(Site, i64), Counts> {
    let mut out: BTreeMap<(Site, i64), Counts> = BTreeMap::new();
    for f in figures {
        out.entry((f.site, interval(f.start)))
            .or_default()
            .add(&f.counts);
    }
    out
}

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

/// Sums slots into intervals of `width` in local time: `offset_us(start)` is the zone's offset
/// from UTC at a slot's start (0 for UTC). Keys are the site and the interval's start as local
/// wall-clock microseconds (a local midnight is a multiple of a day). Zones' offsets are whole
/// quarter hours, so every slot falls in one interval.
pub fn regroup(
    figures: impl IntoIterator<Item = Figures>,
    width: Width,
    offset_us: impl Fn(u64) -> i64,
) -> BTreeMap<(Site, i64), Counts> {
    let mut out: BTreeMap<(Site, i64), Counts> = BTreeMap::new();
    let w = width.us() as i64;
    for f in figures {
        let local = f.start as i64 + offset_us(f.start);
        let start = local.div_euclid(w) * w;
        out.entry((f.site, start)).or_default().add(&f.counts);
    }
    out
}

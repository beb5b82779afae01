//! What one call is at each site at a moment, as flags, and the moments they turned on.
//!
//! A site's flags for a call are all off unless a party (not a supervisor) located at the site
//! is present: the site is then *in* the call, and the call is a conference there when three
//! parties are present (anywhere), observed when a supervisor observes it, and observed in a
//! mode when one of its observing supervisors joined in that mode.

use ledger_schemas::{MonitorMode, Site};

use crate::call::{Call, Party};

/// The site has a party in the call.
pub(crate) const IN_CALL: u8 = 1;
/// The call is a conference.
pub(crate) const CONFERENCE: u8 = 1 << 1;
/// The call is observed.
pub(crate) const OBSERVED: u8 = 1 << 2;
/// The first observed-in-a-mode flag; the four modes follow in [`MODES`] order.
const MODE_SHIFT: u8 = 3;
/// The modes, in flag order.
pub(crate) const MODES: [MonitorMode; 4] = [
    MonitorMode::Mute,
    MonitorMode::Coach,
    MonitorMode::Connect,
    MonitorMode::Normal,
];
/// How many flags there are.
pub(crate) const FLAGS: usize = 3 + MODES.len();

pub(crate) fn mode_flag(mode: MonitorMode) -> u8 {
    let i = MODES.iter().position(|m| *m == mode).unwrap_or(3);
    1 << (MODE_SHIFT + i as u8)
}

/// One site's flags in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SiteTrack {
    pub(crate) site: Site,
    /// The flags on now.
    pub(crate) on: u8,
    /// The per-call figures already counted (calls, conferences, observed).
    pub(crate) counted: u8,
    /// When each flag last turned on (`ts`), by flag index.
    pub(crate) since: [u64; FLAGS],
}

/// What the statistics keep beside a call.
#[derive(Debug, Default)]
pub(crate) struct Track {
    /// The `ts` of the call's first event: the slot its per-call figures count in.
    pub(crate) first_ts: Option<u64>,
    /// Every site that was ever in the call.
    pub(crate) sites: Vec<SiteTrack>,
}

/// Whether `sup` observes a party of `call`: a supervisor that monitors a party (not a
/// supervisor) that joined the call, whether it is still present or not (its observation lasts
/// until the supervisor goes, not until the party it monitors goes).
pub(crate) fn observes(call: &Call, sup: &Party) -> bool {
    sup.is_supervisor()
        && sup
            .monitors
            .is_some_and(|m| call.party(m).is_some_and(|p| !p.is_supervisor()))
}

/// The call-wide flags now: conference, observed and the observing modes.
pub(crate) fn call_flags(call: &Call) -> u8 {
    let mut present = 0;
    let mut flags = 0;
    for p in call.parties().iter().filter(|p| p.is_present()) {
        if !p.is_supervisor() {
            present += 1;
        } else if observes(call, p) {
            flags |= OBSERVED | mode_flag(p.mode);
        }
    }
    if present >= 3 {
        flags |= CONFERENCE;
    }
    flags
}

/// Whether `site` has a party (not a supervisor) present in `call`.
pub(crate) fn in_call(call: &Call, site: Site) -> bool {
    call.parties()
        .iter()
        .any(|p| p.is_present() && !p.is_supervisor() && p.location == site)
}

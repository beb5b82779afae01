//! Statistics: each site's figures per 15-minute slot, and its real-time state (calls and
//! conferences in progress, who observes which call), kept in KV `LEDGER_STATS` and published on
//! `ledger.stats.<key>` after every change.
//!
//! | key | value |
//! | --- | --- |
//! | `<site>.now` | [`SiteNow`]: calls, conferences and observed calls in progress |
//! | `<site>.call.<call>` | [`CallNow`]: one call in progress at the site |
//! | `<site>.fig.<start>` | [`Figures`]: the slot of 15 minutes starting at `<start>` (Unix seconds, UTC) |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{self, DecodeError, Message, VERSION};
use crate::lct::LctSupervisor;
use crate::names::{Dn, Site};
use crate::subject::{SubjectError, parse_uuid_token, push_uuid};

/// The KV bucket of statistics.
pub const STATS_BUCKET: &str = "LEDGER_STATS";
/// The length of a slot, the unit figures are kept in: 15 minutes, in microseconds. Every
/// coarser interval (30 minutes, an hour, a day, in UTC or any zone whose offset is a whole
/// number of quarter hours) is a sum of slots.
pub const SLOT_US: u64 = 15 * 60 * 1_000_000;

/// The start of the slot holding `ts` (microseconds since the Unix epoch).
pub fn slot_of(ts: u64) -> u64 {
    ts - ts % SLOT_US
}

/// The figures of one site over some interval. Durations are microseconds; a duration is
/// counted when its interval closes (a call in progress adds its time when it ends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Calls with a party (not a supervisor) located at the site, in the slot of the call's
    /// first event.
    pub calls: u64,
    /// Of those, calls that were conferences (three parties, not supervisors) while the site
    /// had a party in them, once per call, in the same slot.
    pub conferences: u64,
    /// Of those, calls observed by a supervisor while the site had a party in them
    /// (CallObserved), once per call, in the same slot.
    pub observed: u64,
    /// Time the site had a party in a call.
    pub call_us: u64,
    /// Of that, time the call was a conference.
    pub conference_us: u64,
    /// Of that, time the call was observed.
    pub observed_us: u64,
    /// Observed time with a supervisor in `mute` mode (modes may overlap: two supervisors).
    pub observed_mute_us: u64,
    /// Observed time with a supervisor in `coach` mode.
    pub observed_coach_us: u64,
    /// Observed time with a supervisor in `connect` mode.
    pub observed_connect_us: u64,
    /// Observed time with a supervisor in `normal` mode.
    pub observed_normal_us: u64,
    /// Deletes decided at the site of a party located there.
    pub deletes_local: u64,
    /// Deletes decided at the site of a party located at another site.
    pub deletes_remote: u64,
    /// Refused deletes decided at the site, by refusal code.
    pub refused: BTreeMap<String, u64>,
}

/// The names of the figures of [`Counts`], in order, as in JSON and CSV.
pub const FIGURES: [&str; 13] = [
    "calls",
    "conferences",
    "observed",
    "call_us",
    "conference_us",
    "observed_us",
    "observed_mute_us",
    "observed_coach_us",
    "observed_connect_us",
    "observed_normal_us",
    "deletes_local",
    "deletes_remote",
    "refused",
];

impl Counts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        self.calls += other.calls;
        self.conferences += other.conferences;
        self.observed += other.observed;
        self.call_us += other.call_us;
        self.conference_us += other.conference_us;
        self.observed_us += other.observed_us;
        self.observed_mute_us += other.observed_mute_us;
        self.observed_coach_us += other.observed_coach_us;
        self.observed_connect_us += other.observed_connect_us;
        self.observed_normal_us += other.observed_normal_us;
        self.deletes_local += other.deletes_local;
        self.deletes_remote += other.deletes_remote;
        for (code, n) in &other.refused {
            *self.refused.entry(code.clone()).or_default() += n;
        }
    }

    /// Refused deletes, every code together.
    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }

    /// A figure by its name in [`FIGURES`] (`refused`: every code together).
    pub fn figure(&self, name: &str) -> Option<u64> {
        Some(match name {
            "calls" => self.calls,
            "conferences" => self.conferences,
            "observed" => self.observed,
            "call_us" => self.call_us,
            "conference_us" => self.conference_us,
            "observed_us" => self.observed_us,
            "observed_mute_us" => self.observed_mute_us,
            "observed_coach_us" => self.observed_coach_us,
            "observed_connect_us" => self.observed_connect_us,
            "observed_normal_us" => self.observed_normal_us,
            "deletes_local" => self.deletes_local,
            "deletes_remote" => self.deletes_remote,
            "refused" => self.refused_total(),
            _ => return None,
        })
    }
}

/// A site's figures over one 15-minute slot: the value of `<site>.fig.<start>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Figures {
    /// The site.
    pub site: Site,
    /// The slot's start, microseconds since the Unix epoch (a multiple of [`SLOT_US`]).
    pub start: u64,
    /// The last `LEDGER_EVENTS` sequence these figures count.
    pub seq: u64,
    /// The last `LEDGER_AUDIT` sequence these figures count.
    pub audit_seq: u64,
    /// The figures.
    pub counts: Counts,
}

/// A site's real-time state: the value of `<site>.now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SiteNow {
    /// The site.
    pub site: Site,
    /// The `LEDGER_EVENTS` sequence of the last event that changed this state.
    pub seq: u64,
    /// That event's `ts`.
    pub ts: u64,
    /// Calls in progress with a party located at the site.
    pub calls: u64,
    /// Of those, conferences.
    pub conferences: u64,
    /// Of those, calls observed now.
    pub observed: u64,
}

/// An agent of a call in progress, located at the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentNow {
    /// The agent's party id.
    #[serde(with = "crate::uuid_serde")]
    pub party: Uuid,
    /// Its DN.
    pub dn: Dn,
    /// Whether its call is observed now.
    pub observed: bool,
}

/// One call in progress at a site: the value of `<site>.call.<call>`. When the site has no
/// party left in the call, the key is deleted and a last one with `ended` is published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallNow {
    /// The call.
    pub call: Uuid,
    /// The site.
    pub site: Site,
    /// Stream sequence of the last event of the call read.
    pub seq: u64,
    /// That event's time.
    pub ts: u64,
    /// The site has no party left in the call: the last message about it.
    pub ended: bool,
    /// The call is a conference now.
    pub conference: bool,
    /// The call is observed now.
    pub observed: bool,
    /// The supervisors observing the call now, in join order, with their mode and whom they
    /// monitor.
    pub observers: Vec<LctSupervisor>,
    /// The call's agents located at the site, present now, in join order.
    pub agents: Vec<AgentNow>,
}

#[derive(Serialize)]
struct FiguresOut<'a> {
    v: u64,
    site: Site,
    start: u64,
    minutes: u64,
    seq: u64,
    audit_seq: u64,
    calls: u64,
    conferences: u64,
    observed: u64,
    call_us: u64,
    conference_us: u64,
    observed_us: u64,
    observed_mute_us: u64,
    observed_coach_us: u64,
    observed_connect_us: u64,
    observed_normal_us: u64,
    deletes_local: u64,
    deletes_remote: u64,
    refused: &'a BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct FiguresIn {
    v: u64,
    site: Site,
    start: u64,
    minutes: u64,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    audit_seq: u64,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize, Deserialize)]
struct SiteNowWire {
    v: u64,
    site: Site,
    seq: u64,
    ts: u64,
    calls: u64,
    conferences: u64,
    observed: u64,
}

#[derive(Serialize)]
struct CallNowOut<'a> {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    call: Uuid,
    site: Site,
    seq: u64,
    ts: u64,
    ended: bool,
    conference: bool,
    observed: bool,
    observers: &'a [LctSupervisor],
    agents: &'a [AgentNow],
}

#[derive(Deserialize)]
struct CallNowIn {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    call: Uuid,
    site: Site,
    seq: u64,
    ts: u64,
    #[serde(default)]
    ended: bool,
    conference: bool,
    observed: bool,
    observers: Vec<LctSupervisor>,
    agents: Vec<AgentNow>,
}

codec::versioned!(FiguresIn, SiteNowWire, CallNowIn);

impl Message for Figures {
    const NAME: &'static str = "statistics figures";

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let c = &self.counts;
        let wire = FiguresOut {
            v: VERSION,
            site: self.site,
            start: self.start,
            minutes: SLOT_US / 60_000_000,
            seq: self.seq,
            audit_seq: self.audit_seq,
            calls: c.calls,
            conferences: c.conferences,
            observed: c.observed,
            call_us: c.call_us,
            conference_us: c.conference_us,
            observed_us: c.observed_us,
            observed_mute_us: c.observed_mute_us,
            observed_coach_us: c.observed_coach_us,
            observed_connect_us: c.observed_connect_us,
            observed_normal_us: c.observed_normal_us,
            deletes_local: c.deletes_local,
            deletes_remote: c.deletes_remote,
            refused: &c.refused,
        };
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let w: FiguresIn = codec::read_versioned(Self::NAME, bytes)?;
        if w.minutes != SLOT_US / 60_000_000 || !w.start.is_multiple_of(SLOT_US) {
            return Err(codec::malformed(
                Self::NAME,
                &format_args!(
                    "a slot of {} minutes at {} is not a 15-minute slot",
                    w.minutes, w.start
                ),
            ));
        }
        if w.counts.refused.len() > MAX_CODES {
            return Err(codec::malformed(
                Self::NAME,
                &format_args!(
                    "`refused` holds {} codes, more than {MAX_CODES}",
                    w.counts.refused.len()
                ),
            ));
        }
        Ok(Self {
            site: w.site,
            start: w.start,
            seq: w.seq,
            audit_seq: w.audit_seq,
            counts: w.counts,
        })
    }
}

/// At most this many refusal codes in one [`Counts`] (the contract has 12).
pub const MAX_CODES: usize = 64;

impl Message for SiteNow {
    const NAME: &'static str = "site statistics";

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let wire = SiteNowWire {
            v: VERSION,
            site: self.site,
            seq: self.seq,
            ts: self.ts,
            calls: self.calls,
            conferences: self.conferences,
            observed: self.observed,
        };
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let w: SiteNowWire = codec::read_versioned(Self::NAME, bytes)?;
        Ok(Self {
            site: w.site,
            seq: w.seq,
            ts: w.ts,
            calls: w.calls,
            conferences: w.conferences,
            observed: w.observed,
        })
    }
}

impl Message for CallNow {
    const NAME: &'static str = "call statistics";

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let wire = CallNowOut {
            v: VERSION,
            call: self.call,
            site: self.site,
            seq: self.seq,
            ts: self.ts,
            ended: self.ended,
            conference: self.conference,
            observed: self.observed,
            observers: &self.observers,
            agents: &self.agents,
        };
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let w: CallNowIn = codec::read_versioned(Self::NAME, bytes)?;
        Ok(Self {
            call: w.call,
            site: w.site,
            seq: w.seq,
            ts: w.ts,
            ended: w.ended,
            conference: w.conference,
            observed: w.observed,
            observers: w.observers,
            agents: w.agents,
        })
    }
}

/// A key of [`STATS_BUCKET`]; its subject is `ledger.stats.<key>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatsKey {
    /// `<site>.now`.
    Now(Site),
    /// `<site>.call.<call>`.
    Call(Site, Uuid),
    /// `<site>.fig.<start>`, `start` in microseconds (seconds in the key).
    Figures(Site, u64),
}

/// The prefix of statistics subjects: `ledger.stats.` and a key.
pub const STATS_SUBJECT_PREFIX: &str = "ledger.stats.";

impl StatsKey {
    /// The site the key is about.
    pub fn site(&self) -> Site {
        match *self {
            Self::Now(s) | Self::Call(s, _) | Self::Figures(s, _) => s,
        }
    }

    /// The key in the bucket.
    pub fn key(&self) -> String {
        let mut s = String::with_capacity(48);
        self.push(&mut s);
        s
    }

    /// `ledger.stats.<key>`: where a change to the key is published.
    pub fn subject(&self) -> String {
        let mut s = String::with_capacity(64);
        s.push_str(STATS_SUBJECT_PREFIX);
        self.push(&mut s);
        s
    }

    fn push(&self, s: &mut String) {
        match *self {
            Self::Now(site) => {
                s.push_str(site.as_str());
                s.push_str(".now");
            }
            Self::Call(site, call) => {
                s.push_str(site.as_str());
                s.push_str(".call.");
                push_uuid(s, call);
            }
            Self::Figures(site, start) => {
                s.push_str(site.as_str());
                s.push_str(".fig.");
                s.push_str(&(start / 1_000_000).to_string());
            }
        }
    }

    /// Parses a key of [`STATS_BUCKET`].
    ///
    /// # Errors
    ///
    /// [`SubjectError`] when the key is not one of the three forms.
    pub fn parse(key: &str) -> Result<Self, SubjectError> {
        const FORM: &str = "<site>.now, <site>.call.<call> or <site>.fig.<start>";
        let err = |reason: &str| SubjectError::new("statistics key", key, FORM, reason);
        let mut tokens = key.split('.');
        let site = tokens.next().ok_or_else(|| err("empty"))?;
        let site = Site::new(site).map_err(|e| err(&e.to_string()))?;
        let parsed = match (tokens.next(), tokens.next()) {
            (Some("now"), None) => Self::Now(site),
            (Some("call"), Some(call)) => Self::Call(
                site,
                parse_uuid_token(call).ok_or_else(|| err("the call is not a UUID"))?,
            ),
            (Some("fig"), Some(start)) => {
                let secs: u64 = start
                    .parse()
                    .map_err(|_| err("the start is not a number of seconds"))?;
                let start = secs
                    .checked_mul(1_000_000)
                    .filter(|us| us.is_multiple_of(SLOT_US))
                    .ok_or_else(|| err("the start is not the start of a 15-minute slot"))?;
                Self::Figures(site, start)
            }
            _ => return Err(err("unknown form")),
        };
        if tokens.next().is_some() {
            return Err(err("too many tokens"));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_subjects_round_trip() {
        let site = Site::new("SiteA").unwrap_or_else(|_| unreachable!());
        let call = Uuid::from_u128(0xca);
        for key in [
            StatsKey::Now(site),
            StatsKey::Call(site, call),
            StatsKey::Figures(site, 1_764_115_200_000_000),
        ] {
            assert_eq!(StatsKey::parse(&key.key()), Ok(key));
            assert_eq!(key.subject(), format!("ledger.stats.{}", key.key()));
        }
        assert_eq!(
            StatsKey::Figures(site, 1_764_115_200_000_000).key(),
            "SiteA.fig.1764115200"
        );
        for bad in [
            "SiteA",
            "SiteA.now.x",
            "SiteA.fig.1764115201",
            "SiteA.call.x",
            "a b.now",
        ] {
            assert!(StatsKey::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn counts_add_up_and_name_their_figures() {
        let mut a = Counts {
            calls: 1,
            call_us: 5,
            ..Counts::default()
        };
        a.refused.insert("not_authorized".into(), 2);
        let mut b = a.clone();
        b.add(&a);
        assert_eq!(b.calls, 2);
        assert_eq!(b.figure("refused"), Some(4));
        assert!(FIGURES.iter().all(|f| b.figure(f).is_some()));
    }
}

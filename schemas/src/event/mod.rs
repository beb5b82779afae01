//! Party events: `party_joined`, `party_left`, `party_deleted`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{self, DecodeError, Message, VERSION};
use crate::names::{Dn, Site};
use crate::subject::EventSubject;

mod scan;

/// The kind of a party event; also the last token of its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A party joined the call.
    PartyJoined,
    /// A party left the call by itself (hang-up, transfer, ...).
    PartyLeft,
    /// A party was removed by TDeleteFromConference.
    PartyDeleted,
}

impl EventKind {
    /// The kind's token: `party_joined`, `party_left` or `party_deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PartyJoined => "party_joined",
            Self::PartyLeft => "party_left",
            Self::PartyDeleted => "party_deleted",
        }
    }

    /// Parses a kind token.
    pub fn parse(token: &str) -> Option<Self> {
        match token {
            "party_joined" => Some(Self::PartyJoined),
            "party_left" => Some(Self::PartyLeft),
            "party_deleted" => Some(Self::PartyDeleted),
            _ => None,
        }
    }
}

/// A party's role in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An agent.
    Agent,
    /// A supervisor monitoring another party; listed apart (LCTSupervisor).
    Supervisor,
    /// The customer.
    Customer,
    /// An external party.
    External,
    /// An IVR.
    Ivr,
}

impl Role {
    /// The role's wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Supervisor => "supervisor",
            Self::Customer => "customer",
            Self::External => "external",
            Self::Ivr => "ivr",
        }
    }
}

/// A supervisor's monitor mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitorMode {
    /// Listens without being heard.
    Mute,
    /// Heard by the monitored agent only.
    Coach,
    /// Heard by everyone.
    Connect,
    /// The default mode.
    #[default]
    Normal,
}

impl MonitorMode {
    /// The mode's wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mute => "mute",
            Self::Coach => "coach",
            Self::Connect => "connect",
            Self::Normal => "normal",
        }
    }
}

/// Who deleted a party (DeletedBy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeletedBy {
    /// The requester's party id.
    #[serde(with = "crate::uuid_serde")]
    pub party: Uuid,
    /// The requester's DN.
    pub dn: Dn,
    /// The requester's site.
    pub site: Site,
}

/// What a `party_joined` says about the party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Joined {
    /// The party's DN.
    pub dn: Dn,
    /// The party's role.
    pub role: Role,
    /// The monitor mode; meaningful for supervisors only (others are always `normal`).
    pub mode: MonitorMode,
    /// For a supervisor: the party being monitored.
    pub monitors: Option<Uuid>,
}

/// The kind-specific part of a party event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventBody {
    /// `party_joined`.
    Joined(Joined),
    /// `party_left`, with an optional reason such as `hangup` or `transfer`.
    Left {
        /// Why the party left.
        reason: Option<String>,
    },
    /// `party_deleted`.
    Deleted {
        /// Who deleted the party.
        by: DeletedBy,
        /// The TDeleteFromConference request that caused it.
        request: Uuid,
    },
}

impl EventBody {
    /// The event kind of this body.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Joined(_) => EventKind::PartyJoined,
            Self::Left { .. } => EventKind::PartyLeft,
            Self::Deleted { .. } => EventKind::PartyDeleted,
        }
    }
}

/// A party event, as stored on `ledger.ev.<call>.<site>.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartyEvent {
    /// The event id (`Nats-Msg-Id`); version 7 UUIDs are preferred.
    pub id: Uuid,
    /// The call.
    pub call: Uuid,
    /// The origin site: the site that published the event.
    pub site: Site,
    /// When it happened, in microseconds since the Unix epoch.
    pub ts: u64,
    /// The party this event is about.
    pub party: Uuid,
    /// What happened.
    pub body: EventBody,
}

impl PartyEvent {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }

    /// The subject this event is published on.
    pub fn subject(&self) -> String {
        crate::subject::event(self.call, self.site, self.kind())
    }

    /// Decodes an event and checks it against the subject it was stored on.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the subject is not an event subject, the payload cannot be decoded,
    /// or the payload's call, site or kind disagrees with the subject.
    pub fn decode_on(subject: &str, payload: &[u8]) -> Result<Self, DecodeError> {
        // The fast path: an event in the form this crate writes, on its own subject.
        if let Some(event) = Self::scanned(payload)
            && event.is_on(subject)
        {
            return Ok(event);
        }
        let parsed = EventSubject::parse(subject)?;
        let event = Self::decoded_in_general(payload)?;
        event.check_subject(&parsed, subject)?;
        Ok(event)
    }

    /// Checks the fast path of [`PartyEvent::decode_on`] against the general one, for tests and
    /// fuzzing: whatever the scanner accepts, the general decoder decodes to the same event, and
    /// the subject comparison agrees with parsing the subject and checking it. Panics when they
    /// disagree; returns whether the scanner accepted `payload`.
    #[doc(hidden)]
    pub fn check_fast_path(subject: &str, payload: &[u8]) -> bool {
        let general = Self::decoded_in_general(payload).ok();
        let fast = Self::scanned(payload);
        if let Some(fast) = &fast {
            assert_eq!(
                general.as_ref(),
                Some(fast),
                "the scanner misread {payload:?}"
            );
        }
        if let Some(event) = fast.as_ref().or(general.as_ref()) {
            let checked = EventSubject::parse(subject)
                .is_ok_and(|parsed| event.check_subject(&parsed, subject).is_ok());
            assert_eq!(event.is_on(subject), checked, "subject {subject:?}");
        }
        fast.is_some()
    }

    /// Whether `subject` is this event's subject, compared without parsing or allocating. An
    /// event subject has one spelling (a lowercase hyphenated UUID, a site compared byte for
    /// byte, a kind token), so this agrees with parsing `subject` and checking it.
    fn is_on(&self, subject: &str) -> bool {
        let Some(rest) = subject.as_bytes().strip_prefix(b"ledger.ev.") else {
            return false;
        };
        let mut call = [0u8; uuid::fmt::Hyphenated::LENGTH];
        self.call.hyphenated().encode_lower(&mut call);
        let site = self.site.as_str().as_bytes();
        let kind = self.kind().as_str().as_bytes();
        rest.len() == call.len() + 1 + site.len() + 1 + kind.len()
            && rest.starts_with(&call)
            && rest[call.len()] == b'.'
            && rest[call.len() + 1..].starts_with(site)
            && rest[call.len() + 1 + site.len()] == b'.'
            && rest.ends_with(kind)
    }

    /// Checks that this event belongs on `parsed` (the parsed form of `subject`).
    ///
    /// # Errors
    ///
    /// [`DecodeError::SubjectMismatch`] naming the field that disagrees.
    pub fn check_subject(&self, parsed: &EventSubject, subject: &str) -> Result<(), DecodeError> {
        let mismatch = |field, payload: String| DecodeError::SubjectMismatch {
            field,
            payload,
            subject: subject.to_owned(),
        };
        if parsed.call != self.call {
            return Err(mismatch("call", self.call.to_string()));
        }
        if parsed.site != self.site {
            return Err(mismatch("site", self.site.to_string()));
        }
        if parsed.kind != self.kind() {
            return Err(mismatch("kind", self.kind().as_str().to_owned()));
        }
        Ok(())
    }
}

/// The flat map on the wire. Optional keys are omitted when absent.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    id: Uuid,
    #[serde(with = "crate::uuid_serde")]
    call: Uuid,
    site: Site,
    ts: u64,
    kind: EventKind,
    #[serde(with = "crate::uuid_serde")]
    party: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dn: Option<Dn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<MonitorMode>,
    #[serde(
        default,
        with = "crate::uuid_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    monitors: Option<Uuid>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<DeletedBy>,
    #[serde(
        default,
        with = "crate::uuid_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    request: Option<Uuid>,
}

codec::versioned!(Wire<'_>);

impl Message for PartyEvent {
    const NAME: &'static str = "party event";

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let mut wire = Wire {
            v: VERSION,
            id: self.id,
            call: self.call,
            site: self.site,
            ts: self.ts,
            kind: self.kind(),
            party: self.party,
            dn: None,
            role: None,
            mode: None,
            monitors: None,
            reason: None,
            by: None,
            request: None,
        };
        match &self.body {
            EventBody::Joined(j) => {
                wire.dn = Some(j.dn);
                wire.role = Some(j.role);
                if j.role == Role::Supervisor {
                    wire.mode = Some(j.mode);
                    wire.monitors = j.monitors;
                }
            }
            EventBody::Left { reason } => wire.reason = reason.as_deref().map(Cow::Borrowed),
            EventBody::Deleted { by, request } => {
                wire.by = Some(*by);
                wire.request = Some(*request);
            }
        }
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match Self::scanned(bytes) {
            Some(event) => Ok(event),
            None => Self::decoded_in_general(bytes),
        }
    }
}

impl PartyEvent {
    /// The fast path: the event, if `bytes` are in the form this crate writes.
    fn scanned(bytes: &[u8]) -> Option<Self> {
        scan::wire(bytes).and_then(|w| Self::from_wire(w).ok())
    }

    /// The general decoder, whatever form the bytes take, with its errors.
    fn decoded_in_general(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_wire(codec::read_versioned(Self::NAME, bytes)?)
    }

    /// The event a decoded wire form describes, or the field it lacks.
    fn from_wire(w: Wire<'_>) -> Result<Self, DecodeError> {
        let missing = |field| DecodeError::MissingField {
            message: Self::NAME,
            field,
        };
        let body = match w.kind {
            EventKind::PartyJoined => {
                let role = w.role.ok_or_else(|| missing("role"))?;
                let supervisor = role == Role::Supervisor;
                EventBody::Joined(Joined {
                    dn: w.dn.ok_or_else(|| missing("dn"))?,
                    role,
                    // Mode and monitored party describe supervisors only; on other roles they
                    // carry no meaning and are dropped rather than stored.
                    mode: w.mode.filter(|_| supervisor).unwrap_or_default(),
                    monitors: w.monitors.filter(|_| supervisor),
                })
            }
            EventKind::PartyLeft => EventBody::Left {
                reason: w.reason.map(Cow::into_owned),
            },
            EventKind::PartyDeleted => EventBody::Deleted {
                by: w.by.ok_or_else(|| missing("by"))?,
                request: w.request.ok_or_else(|| missing("request"))?,
            },
        };
        Ok(Self {
            id: w.id,
            call: w.call,
            site: w.site,
            ts: w.ts,
            party: w.party,
            body,
        })
    }
}

//! One call folded from its events: every party with its location, join and departure.
//!
//! The fold is global (every site's events), because a site needs to know where every party is
//! located to decide which events its own view applies. A site's view is then a filter over
//! this fold ([`crate::View`]).

use ledger_schemas::{Dn, EventBody, MonitorMode, PartyEvent, Role, Site};
use uuid::Uuid;

/// A stream position and time of one stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Stream sequence of the event.
    pub seq: u64,
    /// The event's `ts`.
    pub ts: u64,
    /// The site that published it (its origin).
    pub origin: Site,
}

/// Where and when an event was stored: its stream sequence and its `ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct At {
    /// Stream sequence of the event.
    pub seq: u64,
    /// The event's `ts`.
    pub ts: u64,
}

/// How a party left: the `party_left` or `party_deleted` event's position and origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Departure {
    /// Where the event is.
    pub at: At,
    /// The site that published it.
    pub origin: Site,
    /// It was a `party_deleted` (TDeleteFromConference), not a `party_left`.
    pub deleted: bool,
}

impl Departure {
    /// The departure event's stamp.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            seq: self.at.seq,
            ts: self.at.ts,
            origin: self.origin,
        }
    }
}

/// A party that joined the call, present or gone. About 200 bytes: a call in progress costs
/// its parties and one map entry in each fold that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Party {
    /// The party id.
    pub id: Uuid,
    /// The DN.
    pub dn: Dn,
    /// Where the party is located: the origin of its `party_joined`.
    pub location: Site,
    /// The role.
    pub role: Role,
    /// The monitor mode (supervisors).
    pub mode: MonitorMode,
    /// The monitored party (supervisors).
    pub monitors: Option<Uuid>,
    /// The `party_joined` event (published at the party's location).
    pub joined: At,
    /// The departure, once the party has gone.
    pub gone: Option<Departure>,
}

impl Party {
    /// The `party_joined` event's stamp: its origin is the party's location.
    pub fn joined_stamp(&self) -> Stamp {
        Stamp {
            seq: self.joined.seq,
            ts: self.joined.ts,
            origin: self.location,
        }
    }

    /// Whether the party is still in the call.
    pub fn is_present(&self) -> bool {
        self.gone.is_none()
    }

    /// Whether the party is a supervisor (listed apart in LCTParty lists).
    pub fn is_supervisor(&self) -> bool {
        self.role == Role::Supervisor
    }
}

/// Why an event was not applied. The event stays in the log; the fold ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Skip {
    /// Already read: a redelivery or a replay of a position the fold has passed.
    #[error("stream sequence {seq} was already read (the call is at {last})")]
    AlreadyRead {
        /// The event's sequence.
        seq: u64,
        /// The last sequence read for this call.
        last: u64,
    },
    /// The event belongs to another call.
    #[error("the event is about call {0}, not this one")]
    OtherCall(Uuid),
    /// A second `party_joined` of a party that already joined.
    #[error("party {0} already joined the call")]
    SecondJoin(Uuid),
    /// A departure of a party that never joined.
    #[error("party {0} never joined the call")]
    UnknownParty(Uuid),
    /// A departure of a party that already left.
    #[error("party {0} already left the call")]
    AlreadyGone(Uuid),
    /// An event after every party had left.
    #[error("the call had already ended")]
    AfterEnd,
}

impl Skip {
    /// Whether the skip is an anomaly of the log (as opposed to a harmless redelivery).
    pub fn is_anomaly(&self) -> bool {
        !matches!(self, Self::AlreadyRead { .. })
    }

    /// A short, stable name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AlreadyRead { .. } => "already_read",
            Self::OtherCall(_) => "other_call",
            Self::SecondJoin(_) => "second_join",
            Self::UnknownParty(_) => "unknown_party",
            Self::AlreadyGone(_) => "already_gone",
            Self::AfterEnd => "after_end",
        }
    }
}

/// What an applied event changed: enough for each site to tell whether its view changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Change {
    /// The party the event is about.
    pub party: Uuid,
    /// Where that party is located.
    pub location: Site,
    /// The site that published the event.
    pub origin: Site,
    /// Whether the party joined (else it left or was deleted).
    pub joined: bool,
}

impl Change {
    /// Whether `site`'s view applies this event: the site published it, the party is located
    /// there, or the site propagates party events (`extrouter/use-data-from = current`).
    pub fn applies_to(&self, site: Site, propagates: bool) -> bool {
        applies(self.origin, self.location, site, propagates)
    }
}

/// The contract's rule of which events a site's view applies.
pub(crate) fn applies(origin: Site, location: Site, site: Site, propagates: bool) -> bool {
    propagates || origin == site || location == site
}

/// A `party_deleted` of the call: which request caused it, and the event's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Deleted {
    party: Uuid,
    request: Uuid,
    event: Uuid,
}

/// One call folded from the log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    id: Uuid,
    parties: Vec<Party>,
    last_read: u64,
    /// The call's deletes (most calls have none: no allocation).
    deleted: Vec<Deleted>,
}

impl Call {
    /// A call with no event folded yet.
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            parties: Vec::new(),
            last_read: 0,
            deleted: Vec::new(),
        }
    }

    /// The call id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Every party that joined, in join order, present or gone.
    pub fn parties(&self) -> &[Party] {
        &self.parties
    }

    /// The party with this id, present or gone.
    pub fn party(&self, id: Uuid) -> Option<&Party> {
        self.parties.iter().find(|p| p.id == id)
    }

    /// Stream sequence of the call's first applied event (its first join); 0 before any.
    pub fn first_seq(&self) -> u64 {
        self.parties.first().map_or(0, |p| p.joined.seq)
    }

    /// Stream sequence of the last message read for this call, applied or not. It is the
    /// expected last sequence for the call's optimistic concurrency.
    pub fn last_read(&self) -> u64 {
        self.last_read
    }

    /// Whether the call has ended: parties joined and every one has gone.
    pub fn has_ended(&self) -> bool {
        !self.parties.is_empty() && self.parties.iter().all(|p| !p.is_present())
    }

    /// Records that the message at `seq` on this call's subjects was read even though it could
    /// not be applied (undecodable, say), so that the call's position still advances.
    pub fn observe(&mut self, seq: u64) {
        self.last_read = self.last_read.max(seq);
    }

    /// The `party_deleted` that request `request` caused, if any: its departure stamp and event id.
    pub fn deletion_by_request(&self, request: Uuid) -> Option<(Stamp, Uuid)> {
        let d = self.deleted.iter().find(|d| d.request == request)?;
        let stamp = self.party(d.party)?.gone?.stamp();
        Some((stamp, d.event))
    }
}

/// Folds one stored event into its call.
///
/// Pure and total: an event that makes no sense for the state (a second join, a departure of an
/// unknown or gone party, anything after the call ended, a position already read) changes
/// nothing but the call's read position and is returned as a [`Skip`]. Folding the same
/// sequence twice therefore changes nothing.
pub fn evolve(call: &mut Call, seq: u64, event: &PartyEvent) -> Result<Change, Skip> {
    if seq <= call.last_read {
        return Err(Skip::AlreadyRead {
            seq,
            last: call.last_read,
        });
    }
    if event.call != call.id {
        return Err(Skip::OtherCall(event.call));
    }
    call.last_read = seq;
    if call.has_ended() {
        return Err(Skip::AfterEnd);
    }
    let at = At { seq, ts: event.ts };
    let existing = call.parties.iter_mut().find(|p| p.id == event.party);
    match (&event.body, existing) {
        (EventBody::Joined(_), Some(_)) => Err(Skip::SecondJoin(event.party)),
        (EventBody::Joined(j), None) => {
            // Room for four parties at first, then for one more at a time: a call in progress
            // holds no more than its parties.
            if call.parties.len() == call.parties.capacity() {
                call.parties
                    .reserve_exact(if call.parties.is_empty() { 4 } else { 1 });
            }
            call.parties.push(Party {
                id: event.party,
                dn: j.dn,
                location: event.site,
                role: j.role,
                mode: j.mode,
                monitors: j.monitors,
                joined: at,
                gone: None,
            });
            Ok(Change {
                party: event.party,
                location: event.site,
                origin: event.site,
                joined: true,
            })
        }
        (_, None) => Err(Skip::UnknownParty(event.party)),
        (_, Some(p)) if !p.is_present() => Err(Skip::AlreadyGone(event.party)),
        (body, Some(p)) => {
            let deleted = matches!(body, EventBody::Deleted { .. });
            p.gone = Some(Departure {
                at,
                origin: event.site,
                deleted,
            });
            if let EventBody::Deleted { request, .. } = body {
                call.deleted.push(Deleted {
                    party: p.id,
                    request: *request,
                    event: event.id,
                });
            }
            Ok(Change {
                party: p.id,
                location: p.location,
                origin: event.site,
                joined: false,
            })
        }
    }
}

#[cfg(test)]
mod size {
    use super::*;

    /// What a call in progress costs each fold that holds it, the README's memory figures.
    #[test]
    fn a_party_and_a_call_stay_small() {
        let party = std::mem::size_of::<Party>();
        let call = std::mem::size_of::<Call>();
        println!("Party {party} bytes, Call {call} bytes (plus its parties)");
        assert!(party <= 208, "Party grew to {party} bytes");
        assert!(call <= 80, "Call grew to {call} bytes");
    }
}

//! Folding a call's stored messages into replay steps, through the core's `evolve`.

use ledger_core::{Call, View, evolve, global_lct_parties};
use ledger_schemas::{EventBody, LctParty, PartyEvent, Site};
use uuid::Uuid;

use crate::read::StoredMessage;

/// Whose view of the call a replay shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewpoint {
    /// Every site's events applied.
    Global,
    /// One site's view, with Party Events propagation on or off.
    Site {
        /// The site.
        site: Site,
        /// Whether it propagates (`extrouter/use-data-from = current`).
        propagates: bool,
    },
}

/// What happened at one stored message of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEvent {
    /// The event was applied.
    Applied(PartyEvent),
    /// The event decoded but was skipped as an anomaly (the reason is given).
    Skipped(PartyEvent, String),
    /// The payload could not be decoded (the reason is given).
    Undecodable(String),
}

/// One stored message and the view's parties after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Stream sequence.
    pub seq: u64,
    /// What the message was.
    pub event: StepEvent,
    /// Present non-supervisor parties after it, in join order.
    pub parties: Vec<LctParty>,
    /// The DN and location of the party the event is about, when the call knows it.
    pub who: Option<(ledger_schemas::Dn, Site)>,
}

/// Folds `messages` (a call's, in stream order) and returns one step per message.
pub fn fold(call: Uuid, messages: &[StoredMessage], viewpoint: Viewpoint) -> Vec<Step> {
    let mut state = Call::new(call);
    let view = |c: &Call| -> Vec<LctParty> {
        match viewpoint {
            Viewpoint::Global => global_lct_parties(c),
            Viewpoint::Site { site, propagates } => View::new(c, site, propagates).lct_parties(),
        }
    };
    messages
        .iter()
        .map(|m| {
            let event = match PartyEvent::decode_on(&m.subject, &m.payload) {
                Err(e) => {
                    state.observe(m.seq);
                    StepEvent::Undecodable(e.to_string())
                }
                Ok(e) => match evolve(&mut state, m.seq, &e) {
                    Ok(_) => StepEvent::Applied(e),
                    Err(skip) => StepEvent::Skipped(e, skip.to_string()),
                },
            };
            let who = match &event {
                StepEvent::Applied(e) | StepEvent::Skipped(e, _) => {
                    state.party(e.party).map(|p| (p.dn, p.location))
                }
                StepEvent::Undecodable(_) => None,
            };
            Step {
                seq: m.seq,
                event,
                parties: view(&state),
                who,
            }
        })
        .collect()
}

impl Step {
    /// The step as a JSON object of the `ledger replay` contract:
    /// `{seq, ts, site, kind, party, dn?, role?, by?, request?, parties}`, plus `skipped` or
    /// `error` for messages that were not applied.
    pub fn to_json(&self) -> serde_json::Value {
        let parties: Vec<serde_json::Value> = self.parties.iter().map(party_json).collect();
        let mut line = serde_json::json!({ "seq": self.seq });
        let (event, note) = match &self.event {
            StepEvent::Applied(e) => (Some(e), None),
            StepEvent::Skipped(e, why) => (Some(e), Some(("skipped", why))),
            StepEvent::Undecodable(why) => (None, Some(("error", why))),
        };
        if let Some(e) = event {
            line["ts"] = e.ts.into();
            line["site"] = e.site.as_str().into();
            line["kind"] = e.kind().as_str().into();
            line["party"] = e.party.to_string().into();
            match &e.body {
                EventBody::Joined(j) => {
                    line["dn"] = j.dn.as_str().into();
                    line["role"] = j.role.as_str().into();
                }
                EventBody::Left { .. } => {}
                EventBody::Deleted { by, request } => {
                    line["by"] = serde_json::json!({
                        "party": by.party.to_string(),
                        "dn": by.dn.as_str(),
                        "site": by.site.as_str(),
                    });
                    line["request"] = request.to_string().into();
                }
            }
        }
        if let Some((key, why)) = note {
            line[key] = why.as_str().into();
        }
        line["parties"] = parties.into();
        line
    }
}

/// An LCTParty entry as JSON: `{party, dn, location, role}`, the party id as text.
pub fn party_json(p: &LctParty) -> serde_json::Value {
    serde_json::json!({
        "party": p.party.to_string(),
        "dn": p.dn.as_str(),
        "location": p.location.as_str(),
        "role": p.role.as_str(),
    })
}

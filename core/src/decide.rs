//! TDeleteFromConference decided against a site's view: the deletion to append, or the refusal.

use ledger_schemas::{
    DecodeError, DeleteRequest, DeletedBy, EventBody, LctParty, PartyEvent, Refusal, RefusalCode,
    Site, SiteOptions, Target,
};
use uuid::Uuid;

use crate::call::{Call, Party};
use crate::view::{View, lct_party};

/// What the command service should do with an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Append this deletion.
    Delete(Deletion),
    /// The request already caused a `party_deleted`: answer as that first time.
    AlreadyDone {
        /// Stream sequence of that event.
        seq: u64,
        /// Its event id.
        event: Uuid,
    },
}

/// A deletion that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    /// The call.
    pub call: Uuid,
    /// The party to delete.
    pub party: Uuid,
    /// The requester.
    pub by: DeletedBy,
    /// The request id.
    pub request: Uuid,
}

impl Deletion {
    /// The `party_deleted` event to append, published by `site` (the requester's site).
    pub fn into_event(self, id: Uuid, ts: u64, site: Site) -> PartyEvent {
        PartyEvent {
            id,
            call: self.call,
            site,
            ts,
            party: self.party,
            body: EventBody::Deleted {
                by: self.by,
                request: self.request,
            },
        }
    }
}

/// Decides a TDeleteFromConference request at `site`, against `call` (`None` when the site
/// knows nothing of it) and the options in force. The checks run in the contract's order and
/// the first that fails is the refusal.
///
/// # Errors
///
/// The [`Refusal`] to send back. Refusals are business answers, not failures.
pub fn decide(
    request: &DeleteRequest,
    call: Option<&Call>,
    site: Site,
    options: &SiteOptions,
) -> Result<Decision, Refusal> {
    if let Some((stamp, event)) = call.and_then(|c| c.deletion_by_request(request.request)) {
        return Ok(Decision::AlreadyDone {
            seq: stamp.seq,
            event,
        });
    }
    let refuse = Refusal::new;
    let Some(call) = call else {
        return Err(refuse(
            RefusalCode::UnknownCall,
            unknown_call(request.call, site),
        ));
    };
    let view = View::new(call, site, options.propagates());
    if view.is_empty() {
        return Err(refuse(
            RefusalCode::UnknownCall,
            unknown_call(request.call, site),
        ));
    }
    let Some(requester) = view
        .present()
        .find(|p| p.dn == request.this_dn && p.location == site)
    else {
        return Err(refuse(
            RefusalCode::RequesterNotInCall,
            format!(
                "{} is not a party of call {} located at {site}",
                request.this_dn, request.call
            ),
        ));
    };
    let count = view.parties().count();
    if count < 3 {
        return Err(refuse(
            RefusalCode::NotAConference,
            format!(
                "call {} has {count} parties in {site}'s view; a conference has at least 3",
                request.call
            ),
        ));
    }
    let target = resolve(&view, &request.other_dn)?;
    if target.id == requester.id {
        return Err(refuse(
            RefusalCode::InvalidTarget,
            format!("{} names the requester itself", request.other_dn),
        ));
    }
    if target.location != site {
        if !options.call_info {
            return Err(refuse(
                RefusalCode::CallInfoDisabled,
                format!(
                    "{} is located at {}, and {site} has TServer/sip-enable-call-info = false",
                    request.other_dn, target.location
                ),
            ));
        }
        if !options.remote_delete {
            return Err(refuse(
                RefusalCode::RemoteDeleteDisabled,
                format!(
                    "{} is located at {}, and {site} has TServer/sip-remote-del-from-conf = false",
                    request.other_dn, target.location
                ),
            ));
        }
    }
    if target.is_supervisor() && !requester.is_supervisor() {
        return Err(refuse(
            RefusalCode::NotAuthorized,
            format!(
                "{} is a supervisor; only a supervisor may delete one",
                request.other_dn
            ),
        ));
    }
    Ok(Decision::Delete(Deletion {
        call: call.id(),
        party: target.id,
        by: DeletedBy {
            party: requester.id,
            dn: requester.dn,
            site,
        },
        request: request.request,
    }))
}

fn unknown_call(call: Uuid, site: Site) -> String {
    format!("call {call} has no party present in {site}'s view")
}

/// Finds the one present party (or supervisor) that OtherDN names.
fn resolve<'a>(view: &View<'a>, target: &Target) -> Result<&'a Party, Refusal> {
    let matches: Vec<&Party> = view
        .present()
        .filter(|p| match target {
            Target::Party(id) => p.id == *id,
            Target::DnAt(dn, at) => p.dn == *dn && p.location == *at,
            Target::Dn(dn) => p.dn == *dn,
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Refusal::new(
            RefusalCode::PartyNotInCall,
            format!(
                "{target} matches no party present in call {} in {}'s view",
                view.call().id(),
                view.site()
            ),
        )),
        many => Err(Refusal {
            code: RefusalCode::AmbiguousParty,
            message: format!(
                "{target} matches {} parties; name one by party id or dn@site; nothing was deleted",
                many.len()
            ),
            candidates: many.iter().map(|p| lct_party(p)).collect::<Vec<LctParty>>(),
        }),
    }
}

/// The refusal of a request that could not be decoded or breaks the contract's form.
pub fn bad_request(error: &DecodeError) -> Refusal {
    Refusal::new(RefusalCode::BadRequest, error.to_string())
}

/// What to do after the append lost the optimistic-concurrency race `attempt` times
/// (1-based), with at most `max_attempts` attempts in all: `None` to bring the view up to date
/// and decide again, or the `conflict` refusal once the attempts are spent.
pub fn after_conflict(attempt: u32, max_attempts: u32) -> Option<Refusal> {
    (attempt >= max_attempts).then(|| {
        Refusal::new(
            RefusalCode::Conflict,
            format!("the call changed during each of {attempt} attempts; retry the request"),
        )
    })
}

/// The refusal sent when NATS or the streams cannot be reached. Its message is generic on
/// purpose: the cause is logged by the service, not shown to the client.
pub fn unavailable() -> Refusal {
    Refusal::new(
        RefusalCode::Unavailable,
        "the ledger cannot reach its event store right now; retry later",
    )
}

//! LCTParty lists: a site's list of the parties of a call (the EventUserEvent payload).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{self, DecodeError, Message, VERSION};
use crate::event::{MonitorMode, Role};
use crate::names::{Dn, Site};

/// One present party other than a supervisor (LCTParty<n>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LctParty {
    /// The party id: what TDeleteFromConference's OtherDN may carry.
    #[serde(with = "crate::uuid_serde")]
    pub party: Uuid,
    /// The party's DN.
    pub dn: Dn,
    /// The site where the party is located.
    pub location: Site,
    /// The party's role.
    pub role: Role,
}

/// One present supervisor (LCTSupervisor<n>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LctSupervisor {
    /// The supervisor's party id.
    #[serde(with = "crate::uuid_serde")]
    pub party: Uuid,
    /// The supervisor's DN.
    pub dn: Dn,
    /// The site where the supervisor is located.
    pub location: Site,
    /// The monitor mode.
    pub mode: MonitorMode,
    /// The monitored party, when known. Omitted when absent.
    #[serde(
        default,
        with = "crate::uuid_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub monitors: Option<Uuid>,
}

/// A site's LCTParty list of one call, kept in KV `LEDGER_LCT` and published on
/// `ledger.lct.<site>.<call>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LctList {
    /// The call.
    pub call: Uuid,
    /// The viewing site.
    pub site: Site,
    /// Stream sequence of the last event applied to this call in this view.
    pub seq: u64,
    /// That event's time, in microseconds since the Unix epoch.
    pub ts: u64,
    /// Present parties other than supervisors, in join order.
    pub parties: Vec<LctParty>,
    /// Present supervisors, in join order.
    pub supervisors: Vec<LctSupervisor>,
}

impl LctList {
    /// Whether the call is a conference in this view: at least three `parties`.
    pub fn is_conference(&self) -> bool {
        self.parties.len() >= 3
    }

    /// Whether no party is left in this view (the call has ended here).
    pub fn is_empty(&self) -> bool {
        self.parties.is_empty() && self.supervisors.is_empty()
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    call: Uuid,
    site: Site,
    seq: u64,
    ts: u64,
    parties: &'a [LctParty],
    supervisors: &'a [LctSupervisor],
}

#[derive(Deserialize)]
struct WireIn {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    call: Uuid,
    site: Site,
    seq: u64,
    ts: u64,
    parties: Vec<LctParty>,
    supervisors: Vec<LctSupervisor>,
}

codec::versioned!(WireIn);

impl Message for LctList {
    const NAME: &'static str = "LCTParty list";

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let wire = WireOut {
            v: VERSION,
            call: self.call,
            site: self.site,
            seq: self.seq,
            ts: self.ts,
            parties: &self.parties,
            supervisors: &self.supervisors,
        };
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let w: WireIn = codec::read_versioned(Self::NAME, bytes)?;
        Ok(Self {
            call: w.call,
            site: w.site,
            seq: w.seq,
            ts: w.ts,
            parties: w.parties,
            supervisors: w.supervisors,
        })
    }
}

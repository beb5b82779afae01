//! The TDeleteFromConference reply: accepted, or refused with a code and a T-Library error.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::codec::{self, DecodeError, Message, VERSION};
use crate::lct::LctParty;

/// Why a request was refused, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// Undecodable, a missing or malformed field, `v` too large.
    BadRequest,
    /// No party present in the call in this site's view.
    UnknownCall,
    /// `this_dn` is not a present party (or supervisor) located at this site.
    RequesterNotInCall,
    /// Fewer than three `parties` present.
    NotAConference,
    /// `other_dn` matches no present party (or supervisor).
    PartyNotInCall,
    /// A bare DN matches several present parties; nothing is deleted.
    AmbiguousParty,
    /// The target is the requester itself.
    InvalidTarget,
    /// The target is remote and this site's `sip-enable-call-info` is `false`.
    CallInfoDisabled,
    /// The target is remote and this site's `sip-remote-del-from-conf` is `false`.
    RemoteDeleteDisabled,
    /// The target is a supervisor and the requester is not one.
    NotAuthorized,
    /// Concurrent changes kept winning the race after retries; the client may retry.
    Conflict,
    /// NATS or the streams could not be reached.
    Unavailable,
}

impl RefusalCode {
    /// The code's wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownCall => "unknown_call",
            Self::RequesterNotInCall => "requester_not_in_call",
            Self::NotAConference => "not_a_conference",
            Self::PartyNotInCall => "party_not_in_call",
            Self::AmbiguousParty => "ambiguous_party",
            Self::InvalidTarget => "invalid_target",
            Self::CallInfoDisabled => "call_info_disabled",
            Self::RemoteDeleteDisabled => "remote_delete_disabled",
            Self::NotAuthorized => "not_authorized",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
        }
    }

    /// The T-Library error code (`terr`) the contract pairs with this refusal.
    pub fn terr(self) -> u32 {
        match self {
            Self::BadRequest | Self::AmbiguousParty | Self::InvalidTarget => 53,
            Self::UnknownCall => 56,
            Self::RequesterNotInCall | Self::PartyNotInCall => 470,
            Self::NotAConference => 496,
            Self::CallInfoDisabled | Self::RemoteDeleteDisabled => 1005,
            Self::NotAuthorized => 472,
            Self::Conflict => 52,
            Self::Unavailable => 58,
        }
    }
}

/// A refusal: the code, a message for people, and for `ambiguous_party` the candidates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}", code = .code.as_str())]
pub struct Refusal {
    /// The refusal code.
    pub code: RefusalCode,
    /// What was refused and why, for people.
    pub message: String,
    /// For `ambiguous_party`: every present party the bare DN matched.
    pub candidates: Vec<LctParty>,
}

impl Refusal {
    /// A refusal without candidates.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            candidates: Vec::new(),
        }
    }
}

/// An accepted delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Stream sequence of the `party_deleted` event.
    pub seq: u64,
    /// Id of the `party_deleted` event.
    pub event: Uuid,
    /// The requester's view of `parties` after it.
    pub parties: Vec<LctParty>,
}

/// The reply to a TDeleteFromConference request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteReply {
    /// The request id; absent only when the request could not be decoded.
    pub request: Option<Uuid>,
    /// Accepted or refused.
    pub outcome: Result<Accepted, Refusal>,
}

impl DeleteReply {
    /// The refusal code, or `None` when accepted.
    pub fn code(&self) -> Option<RefusalCode> {
        self.outcome.as_ref().err().map(|r| r.code)
    }
}

#[derive(Serialize, Deserialize)]
struct ErrorWire {
    code: RefusalCode,
    terr: u32,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    candidates: Option<Vec<LctParty>>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u64,
    #[serde(
        default,
        with = "crate::uuid_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    request: Option<Uuid>,
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(
        default,
        with = "crate::uuid_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    event: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parties: Option<Vec<LctParty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<ErrorWire>,
}

codec::versioned!(Wire);

const NAME: &str = "TDeleteFromConference reply";

impl From<&DeleteReply> for Wire {
    fn from(r: &DeleteReply) -> Self {
        let mut w = Self {
            v: VERSION,
            request: r.request,
            ok: r.outcome.is_ok(),
            seq: None,
            event: None,
            parties: None,
            error: None,
        };
        match &r.outcome {
            Ok(a) => {
                w.seq = Some(a.seq);
                w.event = Some(a.event);
                w.parties = Some(a.parties.clone());
            }
            Err(e) => {
                w.error = Some(ErrorWire {
                    code: e.code,
                    terr: e.code.terr(),
                    message: e.message.clone(),
                    candidates: (e.code == RefusalCode::AmbiguousParty)
                        .then(|| e.candidates.clone()),
                });
            }
        }
        w
    }
}

impl TryFrom<Wire> for DeleteReply {
    type Error = DecodeError;

    fn try_from(w: Wire) -> Result<Self, DecodeError> {
        codec::check_version(NAME, w.v)?;
        let missing = |field| DecodeError::MissingField {
            message: NAME,
            field,
        };
        let outcome = if w.ok {
            Ok(Accepted {
                seq: w.seq.ok_or_else(|| missing("seq"))?,
                event: w.event.ok_or_else(|| missing("event"))?,
                parties: w.parties.unwrap_or_default(),
            })
        } else {
            let e = w.error.ok_or_else(|| missing("error"))?;
            Err(Refusal {
                code: e.code,
                message: e.message,
                candidates: e.candidates.unwrap_or_default(),
            })
        };
        Ok(Self {
            request: w.request,
            outcome,
        })
    }
}

impl Message for DeleteReply {
    const NAME: &'static str = NAME;

    fn encode_into(&self, buf: &mut Vec<u8>) {
        codec::write_named(&Wire::from(self), buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::read_versioned::<Wire>(NAME, bytes)?.try_into()
    }
}

// The reply is nested in audit records, so it also serializes through its wire form.
impl Serialize for DeleteReply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for DeleteReply {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Wire::deserialize(d)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

//! Audit records: every TDeleteFromConference decision, on `ledger.audit.<site>.<call>`.

use rmpv::Value;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{self, DecodeError, Message, VERSION};
use crate::config::{ConfigMap, SiteOptions};
use crate::names::Site;
use crate::reply::DeleteReply;

/// One decision of a site's command service, recorded before the reply is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// The record id.
    pub id: Uuid,
    /// When the decision was made, in microseconds since the Unix epoch.
    pub ts: u64,
    /// The deciding site.
    pub site: Site,
    /// The request as received (a MessagePack map, kept as it came), with every value past the
    /// contract's bounds cut to its bound when the request was past them.
    pub request: Value,
    /// The size of a request that was past the bounds, as received; `None` otherwise.
    pub request_bytes: Option<u64>,
    /// The reply as sent.
    pub reply: DeleteReply,
    /// Stream sequence of the view the request was checked against.
    pub view_seq: u64,
    /// The three options in force.
    pub config: SiteOptions,
}

impl AuditRecord {
    /// A text field of the recorded request (`this_dn`, `other_dn`), when it is text.
    pub fn request_text(&self, field: &str) -> Option<&str> {
        self.request_field(field)?.as_str()
    }

    /// The call of the recorded request, when it names one.
    pub fn request_call(&self) -> Option<Uuid> {
        match self.request_field("call")? {
            Value::Binary(b) => Uuid::from_slice(b).ok(),
            Value::String(s) => s.as_str().and_then(crate::subject::parse_uuid_token),
            _ => None,
        }
    }

    fn request_field(&self, field: &str) -> Option<&Value> {
        self.request
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(field))
            .map(|(_, v)| v)
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    id: Uuid,
    ts: u64,
    site: Site,
    request: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_bytes: Option<u64>,
    reply: DeleteReply,
    view_seq: u64,
    config: ConfigMap,
}

codec::versioned!(Wire);

impl Message for AuditRecord {
    const NAME: &'static str = "audit record";

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let wire = Wire {
            v: VERSION,
            id: self.id,
            ts: self.ts,
            site: self.site,
            request: self.request.clone(),
            request_bytes: self.request_bytes,
            reply: self.reply.clone(),
            view_seq: self.view_seq,
            config: ConfigMap::from(&self.config),
        };
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let w: Wire = codec::read_versioned(Self::NAME, bytes)?;
        let config = SiteOptions::try_from(w.config).map_err(|e| DecodeError::InvalidField {
            message: Self::NAME,
            field: "config",
            reason: e.to_string(),
        })?;
        Ok(Self {
            id: w.id,
            ts: w.ts,
            site: w.site,
            request: w.request,
            request_bytes: w.request_bytes,
            reply: w.reply,
            view_seq: w.view_seq,
            config,
        })
    }
}

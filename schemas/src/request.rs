//! The TDeleteFromConference request and its target (OtherDN).

use std::collections::BTreeMap;
use std::fmt;

use rmpv::Value;
use serde::Serialize;
use uuid::Uuid;

use crate::codec::{self, DecodeError, Message, VERSION};
use crate::names::{Dn, NameError, Site};
use crate::subject::parse_uuid_token;

/// Whom a TDeleteFromConference names (OtherDN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A party id from the LCTParty list: names exactly one party.
    Party(Uuid),
    /// `dn@site`: the party with that DN located at that site.
    DnAt(Dn, Site),
    /// A bare DN: refused as ambiguous when several present parties have it.
    Dn(Dn),
}

impl Target {
    /// Parses OtherDN. A lowercase hyphenated UUID is a party id; text with an `@` is
    /// `dn@site`; anything else is a bare DN.
    ///
    /// # Errors
    ///
    /// [`NameError`] when the DN or site part breaks the naming rules.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if let Some(id) = parse_uuid_token(s) {
            return Ok(Self::Party(id));
        }
        match s.rsplit_once('@') {
            Some((dn, site)) => Ok(Self::DnAt(Dn::new(dn)?, Site::new(site)?)),
            None => Ok(Self::Dn(Dn::new(s)?)),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Party(id) => write!(f, "{id}"),
            Self::DnAt(dn, site) => write!(f, "{dn}@{site}"),
            Self::Dn(dn) => write!(f, "{dn}"),
        }
    }
}

/// A TDeleteFromConference request, served on `ledger.cmd.<site>.delete_from_conference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRequest {
    /// The idempotency key.
    pub request: Uuid,
    /// The call.
    pub call: Uuid,
    /// The requester: a present party of the call located at the serving site.
    pub this_dn: Dn,
    /// The party to delete.
    pub other_dn: Target,
    /// Free-form reasons, recorded in the audit.
    pub reasons: BTreeMap<String, String>,
    /// Free-form extensions, recorded in the audit.
    pub extensions: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    request: Uuid,
    #[serde(with = "crate::uuid_serde")]
    call: Uuid,
    this_dn: Dn,
    other_dn: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    reasons: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, String>,
}

const NAME: &str = "TDeleteFromConference request";

/// The contract's bounds on a TDeleteFromConference request. A request past any of them is
/// refused with `bad_request` before anything is appended, and audited with its values cut to
/// them.
pub mod bounds {
    /// The largest request, as encoded.
    pub const REQUEST_BYTES: usize = 8 * 1024;
    /// The most entries of `reasons` and of `extensions`.
    pub const MAP_ENTRIES: usize = 32;
    /// The longest key of `reasons` and `extensions`, in bytes.
    pub const KEY_BYTES: usize = 64;
    /// The longest value of `reasons` and `extensions`, in bytes.
    pub const VALUE_BYTES: usize = 512;
    /// The longest `other_dn`, in bytes.
    pub const OTHER_DN_BYTES: usize = 128;
    /// The most bytes of an offending value a refusal's message quotes.
    pub const QUOTE_BYTES: usize = 64;
    /// How deep a request's MessagePack may nest (a request is two levels deep).
    pub const DEPTH: usize = 8;
}

/// Shows `value` for an error message, cut to [`bounds::QUOTE_BYTES`] bytes (`…` marks a cut):
/// a message never carries a whole oversized value.
pub fn quote(value: &Value) -> String {
    let text = match value {
        Value::String(s) => match s.as_str() {
            Some(t) => format!("{t:?}"),
            None => format!("{:?}", String::from_utf8_lossy(s.as_bytes())),
        },
        Value::Binary(b) => {
            let shown: String = b
                .iter()
                .take(bounds::QUOTE_BYTES / 2)
                .map(|x| format!("{x:02x}"))
                .collect();
            let more = if b.len() > bounds::QUOTE_BYTES / 2 {
                "…"
            } else {
                ""
            };
            return format!("{} bytes of binary 0x{shown}{more}", b.len());
        }
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Map(m) => format!("a map of {} entries", m.len()),
        other => other.to_string(),
    };
    cut_text(&text, bounds::QUOTE_BYTES)
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn cut_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl DeleteRequest {
    /// Reads a request's MessagePack map, as received: one map, nested at most
    /// [`bounds::DEPTH`] deep, with nothing after it. Its fields are not checked.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Malformed`] when the bytes are not one MessagePack map.
    pub fn read_value(bytes: &[u8]) -> Result<Value, DecodeError> {
        let malformed = |reason: String| DecodeError::Malformed {
            message: NAME,
            reason,
        };
        let mut rest = bytes;
        let raw = rmpv::decode::read_value_with_max_depth(&mut rest, bounds::DEPTH)
            .map_err(|e| malformed(e.to_string()))?;
        if !raw.is_map() {
            return Err(malformed(format!("expected a map, found {}", quote(&raw))));
        }
        if !rest.is_empty() {
            return Err(malformed(format!("{} bytes after the map", rest.len())));
        }
        Ok(raw)
    }

    /// The request id and the call of a request's map, where they can be read (to answer and
    /// audit a request that is refused).
    pub fn ids(raw: &Value) -> (Option<Uuid>, Option<Uuid>) {
        let fields = Fields::new(raw);
        (fields.uuid("request").ok(), fields.uuid("call").ok())
    }

    /// Reads the request's fields from its map.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] naming the field that breaks the contract; values are quoted cut.
    pub fn from_value(raw: &Value) -> Result<Self, DecodeError> {
        Fields::new(raw).request()
    }
}

/// Typed access to the keys of a decoded map.
struct Fields<'a> {
    map: Option<&'a [(Value, Value)]>,
}

impl<'a> Fields<'a> {
    fn new(raw: &'a Value) -> Self {
        Self {
            map: raw.as_map().map(Vec::as_slice),
        }
    }

    fn get(&self, field: &'static str) -> Option<&'a Value> {
        self.map?
            .iter()
            .find(|(k, _)| k.as_str() == Some(field))
            .map(|(_, v)| v)
            .filter(|v| !v.is_nil())
    }

    fn required(&self, field: &'static str) -> Result<&'a Value, DecodeError> {
        self.get(field).ok_or(DecodeError::MissingField {
            message: NAME,
            field,
        })
    }

    fn invalid(field: &'static str, reason: impl Into<String>) -> DecodeError {
        DecodeError::InvalidField {
            message: NAME,
            field,
            reason: reason.into(),
        }
    }

    fn uuid(&self, field: &'static str) -> Result<Uuid, DecodeError> {
        match self.required(field)? {
            Value::Binary(b) => Uuid::from_slice(b)
                .map_err(|_| Self::invalid(field, format!("a UUID is 16 bytes, not {}", b.len()))),
            Value::String(s) => s
                .as_str()
                .and_then(parse_uuid_token)
                .ok_or_else(|| Self::invalid(field, "not a lowercase hyphenated UUID")),
            other => Err(Self::invalid(
                field,
                format!("expected a UUID, found {}", quote(other)),
            )),
        }
    }

    fn text(&self, field: &'static str) -> Result<&'a str, DecodeError> {
        match self.required(field)? {
            Value::String(s) => s
                .as_str()
                .ok_or_else(|| Self::invalid(field, "not valid UTF-8")),
            other => Err(Self::invalid(
                field,
                format!("expected text, found {}", quote(other)),
            )),
        }
    }

    fn text_map(&self, field: &'static str) -> Result<BTreeMap<String, String>, DecodeError> {
        let Some(value) = self.get(field) else {
            return Ok(BTreeMap::new());
        };
        let entries = value
            .as_map()
            .ok_or_else(|| Self::invalid(field, "expected a map of text to text"))?;
        entries
            .iter()
            .map(|(k, v)| match (k.as_str(), v.as_str()) {
                (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                _ => Err(Self::invalid(field, "expected a map of text to text")),
            })
            .collect()
    }

    fn request(&self) -> Result<DeleteRequest, DecodeError> {
        let v = match self.required("v")? {
            Value::Integer(i) => i.as_u64().ok_or_else(|| Self::invalid("v", "negative"))?,
            other => {
                return Err(Self::invalid(
                    "v",
                    format!("expected an integer, found {}", quote(other)),
                ));
            }
        };
        codec::check_version(NAME, v)?;
        let name = |field| {
            move |source| DecodeError::Name {
                message: NAME,
                field,
                source,
            }
        };
        Ok(DeleteRequest {
            request: self.uuid("request")?,
            call: self.uuid("call")?,
            this_dn: Dn::new(self.text("this_dn")?).map_err(name("this_dn"))?,
            other_dn: Target::parse(self.text("other_dn")?).map_err(name("other_dn"))?,
            reasons: self.text_map("reasons")?,
            extensions: self.text_map("extensions")?,
        })
    }
}

impl Message for DeleteRequest {
    const NAME: &'static str = NAME;

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let wire = WireOut {
            v: VERSION,
            request: self.request,
            call: self.call,
            this_dn: self.this_dn,
            other_dn: self.other_dn.to_string(),
            reasons: &self.reasons,
            extensions: &self.extensions,
        };
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::from_value(&Self::read_value(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_by_form() {
        let id = "0192f3a4-5b6c-7d8e-9f01-23456789abcd";
        assert_eq!(
            Target::parse(id).unwrap(),
            Target::Party(Uuid::parse_str(id).unwrap())
        );
        assert_eq!(
            Target::parse("7001@SiteB").unwrap(),
            Target::DnAt(Dn::new("7001").unwrap(), Site::new("SiteB").unwrap())
        );
        assert_eq!(
            Target::parse("7001").unwrap(),
            Target::Dn(Dn::new("7001").unwrap())
        );
        assert!(Target::parse("7001@").is_err());
        assert!(Target::parse("7001@a.b").is_err());
        assert!(Target::parse("a@b@SiteB").is_err());
        assert!(Target::parse("").is_err());
    }
}

//! A TDeleteFromConference request as received: read, held to the contract's bounds, and what
//! the audit keeps of it. The one place where the bounds are enforced.
//!
//! A request past a bound is refused with `bad_request` before anything is appended; its audit
//! record keeps the request with every oversized value cut to its bound, and the size it had
//! (`request_bytes`), so that a record always fits in one message. Refusal messages name the
//! field and the bound and quote at most [`bounds::QUOTE_BYTES`] of the offending value.

use ledger_schemas::{DecodeError, DeleteRequest, Dn, Refusal, RefusalCode, bounds, quote};
use rmpv::Value;
use uuid::Uuid;

use crate::decide::bad_request;

/// A request that may be decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The request.
    pub request: DeleteRequest,
    /// Its map as received, for the audit.
    pub raw: Value,
}

/// A request refused before any decision: undecodable, malformed, or past a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Inadmissible {
    /// The request id, when it could be read (the reply carries it).
    pub request: Option<Uuid>,
    /// The call, when it could be read (the audit record's subject).
    pub call: Option<Uuid>,
    /// What the audit records of the request: its map as received, or cut to the bounds when
    /// it was past them; `None` when the bytes were not a map at all.
    pub audited: Option<Value>,
    /// The size of a request that was past the bounds, as received.
    pub request_bytes: Option<u64>,
    /// The `bad_request` refusal.
    pub refusal: Refusal,
}

/// Reads `bytes` as a TDeleteFromConference request and holds it to the contract's bounds.
///
/// # Errors
///
/// [`Inadmissible`] with the `bad_request` refusal to send, and what to audit.
pub fn admit(bytes: &[u8]) -> Result<Admitted, Box<Inadmissible>> {
    let raw = DeleteRequest::read_value(bytes).map_err(|e| {
        Box::new(Inadmissible {
            request: None,
            call: None,
            audited: None,
            request_bytes: None,
            refusal: bad_request(&e),
        })
    })?;
    let (request, call) = DeleteRequest::ids(&raw);
    if let Some(message) = past_bounds(&raw, bytes.len()) {
        return Err(Box::new(Inadmissible {
            request,
            call,
            audited: Some(cut(&raw)),
            request_bytes: Some(bytes.len() as u64),
            refusal: Refusal::new(RefusalCode::BadRequest, message),
        }));
    }
    match DeleteRequest::from_value(&raw) {
        Ok(decoded) => Ok(Admitted {
            request: decoded,
            raw,
        }),
        Err(e) => Err(Box::new(refused(request, call, raw, &e))),
    }
}

fn refused(request: Option<Uuid>, call: Option<Uuid>, raw: Value, e: &DecodeError) -> Inadmissible {
    Inadmissible {
        request,
        call,
        audited: Some(raw),
        request_bytes: None,
        refusal: bad_request(e),
    }
}

/// The length in bytes of a text or binary value.
fn byte_len(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.as_bytes().len()),
        Value::Binary(b) => Some(b.len()),
        _ => None,
    }
}

fn entries(raw: &Value) -> &[(Value, Value)] {
    raw.as_map().map_or(&[], Vec::as_slice)
}

fn field<'a>(raw: &'a Value, name: &str) -> Option<&'a Value> {
    entries(raw)
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

/// The first bound the request breaks, as a refusal message; `None` when it keeps them all.
fn past_bounds(raw: &Value, size: usize) -> Option<String> {
    if let Some(v) = field(raw, "other_dn")
        && let Some(len) = byte_len(v).filter(|&n| n > bounds::OTHER_DN_BYTES)
    {
        return Some(format!(
            "other_dn is {len} bytes; at most {} are allowed: {}",
            bounds::OTHER_DN_BYTES,
            quote(v)
        ));
    }
    for name in ["reasons", "extensions"] {
        let Some(map) = field(raw, name).and_then(Value::as_map) else {
            continue;
        };
        if map.len() > bounds::MAP_ENTRIES {
            return Some(format!(
                "{name} has {} entries; at most {} are allowed",
                map.len(),
                bounds::MAP_ENTRIES
            ));
        }
        for (k, v) in map {
            if let Some(len) = byte_len(k).filter(|&n| n > bounds::KEY_BYTES) {
                return Some(format!(
                    "a key of {name} is {len} bytes; at most {} are allowed: {}",
                    bounds::KEY_BYTES,
                    quote(k)
                ));
            }
            if let Some(len) = byte_len(v).filter(|&n| n > bounds::VALUE_BYTES) {
                return Some(format!(
                    "the value of {name} {} is {len} bytes; at most {} are allowed: {}",
                    quote(k),
                    bounds::VALUE_BYTES,
                    quote(v)
                ));
            }
        }
    }
    (size > bounds::REQUEST_BYTES).then(|| {
        format!(
            "the request is {size} bytes as encoded; at most {} are allowed",
            bounds::REQUEST_BYTES
        )
    })
}

/// The request cut to the bounds, for the audit: `other_dn`, `this_dn` and the entries of
/// `reasons` and `extensions` to their own bounds, every other value to
/// [`bounds::KEY_BYTES`]; maps and arrays to [`bounds::MAP_ENTRIES`] entries, one level deep.
/// Whatever came in (at most the server's payload limit), the result is a few tens of KiB.
fn cut(raw: &Value) -> Value {
    let mut known = Vec::new();
    let mut others = Vec::new();
    for (k, v) in entries(raw) {
        let cut_entry = match k.as_str() {
            Some("other_dn") => (k.clone(), cut_value(v, bounds::OTHER_DN_BYTES, 0)),
            Some("this_dn") => (k.clone(), cut_value(v, Dn::MAX_LEN, 0)),
            Some("reasons" | "extensions") => (k.clone(), cut_map(v)),
            Some("v" | "request" | "call") => (k.clone(), cut_value(v, bounds::KEY_BYTES, 0)),
            _ => {
                if others.len() < bounds::MAP_ENTRIES {
                    others.push((
                        cut_value(k, bounds::KEY_BYTES, 1),
                        cut_value(v, bounds::KEY_BYTES, 0),
                    ));
                }
                continue;
            }
        };
        known.push(cut_entry);
    }
    known.extend(others);
    Value::Map(known)
}

fn cut_map(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .take(bounds::MAP_ENTRIES)
                .map(|(k, v)| {
                    (
                        cut_value(k, bounds::KEY_BYTES, 1),
                        cut_value(v, bounds::VALUE_BYTES, 1),
                    )
                })
                .collect(),
        ),
        other => cut_value(other, bounds::VALUE_BYTES, 0),
    }
}

/// `v` with text and binary cut to `max` bytes; maps and arrays, at `depth` 0, to
/// [`bounds::MAP_ENTRIES`] entries of scalars (nested ones become nil), deeper ones to nil.
fn cut_value(v: &Value, max: usize, depth: u8) -> Value {
    match v {
        Value::String(s) => match s.as_str() {
            Some(text) => {
                let mut end = text.len().min(max);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                Value::from(&text[..end])
            }
            None => Value::Binary(s.as_bytes()[..s.as_bytes().len().min(max)].to_vec()),
        },
        Value::Binary(b) => Value::Binary(b[..b.len().min(max)].to_vec()),
        Value::Array(a) if depth == 0 => Value::Array(
            a.iter()
                .take(bounds::MAP_ENTRIES)
                .map(|x| cut_value(x, max, 1))
                .collect(),
        ),
        Value::Map(m) if depth == 0 => Value::Map(
            m.iter()
                .take(bounds::MAP_ENTRIES)
                .map(|(k, x)| (cut_value(k, max, 1), cut_value(x, max, 1)))
                .collect(),
        ),
        Value::Array(_) | Value::Map(_) | Value::Ext(..) => Value::Nil,
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests;

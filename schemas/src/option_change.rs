//! Option changes on the audit record: `ledger.audit.<site>.options`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::{self, DecodeError, Message, VERSION};
use crate::config::OptionName;
use crate::names::Site;
use crate::request::bounds;

/// The `kind` of an option change record.
pub const OPTION_CHANGED: &str = "option_changed";

/// A change of one of a site's options, recorded once by the site's leading projector before the
/// change takes effect in its view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionChanged {
    /// The record id.
    pub id: Uuid,
    /// When it was recorded, in microseconds since the Unix epoch.
    pub ts: u64,
    /// The site whose option changed.
    pub site: Site,
    /// The option (`key` on the wire: the key without the site).
    pub option: OptionName,
    /// The value in force before, as text; `None` when it was unset.
    pub old: Option<String>,
    /// The value written, as text (cut to [`bounds::VALUE_BYTES`]); `None` when the key was
    /// deleted (the option went back to its default).
    pub new: Option<String>,
    /// The value was invalid and refused: the previous value stays in force.
    pub refused: bool,
}

impl OptionChanged {
    /// Text of a written value for the record: lossily decoded, cut to [`bounds::VALUE_BYTES`].
    pub fn value_text(value: &[u8]) -> String {
        let mut end = value.len().min(bounds::VALUE_BYTES);
        loop {
            match std::str::from_utf8(&value[..end]) {
                Ok(t) => return t.to_owned(),
                // Cut inside a character: step back to its start (at most three bytes).
                Err(e) if e.error_len().is_none() => end = e.valid_up_to(),
                Err(_) => return String::from_utf8_lossy(&value[..end]).into_owned(),
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u64,
    #[serde(with = "crate::uuid_serde")]
    id: Uuid,
    ts: u64,
    site: Site,
    kind: String,
    key: String,
    old: Option<String>,
    new: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    refused: bool,
}

codec::versioned!(Wire);

impl Message for OptionChanged {
    const NAME: &'static str = "option change record";

    fn encode_into(&self, buf: &mut Vec<u8>) {
        let wire = Wire {
            v: VERSION,
            id: self.id,
            ts: self.ts,
            site: self.site,
            kind: OPTION_CHANGED.to_owned(),
            key: self.option.as_str().to_owned(),
            old: self.old.clone(),
            new: self.new.clone(),
            refused: self.refused,
        };
        codec::write_named(&wire, buf);
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let w: Wire = codec::read_versioned(Self::NAME, bytes)?;
        let invalid = |field, reason: String| DecodeError::InvalidField {
            message: Self::NAME,
            field,
            reason,
        };
        if w.kind != OPTION_CHANGED {
            return Err(invalid(
                "kind",
                format!("expected {OPTION_CHANGED:?}, found {:?}", w.kind),
            ));
        }
        let option = OptionName::parse(&w.key)
            .ok_or_else(|| invalid("key", format!("{:?} is not one of the options", w.key)))?;
        Ok(Self {
            id: w.id,
            ts: w.ts,
            site: w.site,
            option,
            old: w.old,
            new: w.new,
            refused: w.refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        let long = format!("a{}", "é".repeat(400));
        let text = OptionChanged::value_text(long.as_bytes());
        assert_eq!(text.len(), 511, "the cut falls inside an é: it is left out");
        assert!(text.chars().skip(1).all(|c| c == 'é'));
        assert_eq!(OptionChanged::value_text(b"current"), "current");
        assert_eq!(OptionChanged::value_text(&[0xff, b'x']), "\u{fffd}x");
    }
}

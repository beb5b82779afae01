//! The MessagePack codec shared by every message: named maps, the `v` check, typed errors.

use serde::{Deserialize, Serialize};

use crate::names::NameError;

/// The schema version this crate writes and the newest it reads.
pub const VERSION: u64 = 1;

/// Why a message could not be decoded. Every variant says which field was wrong and how.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not MessagePack, not a map, or a field of the wrong type.
    #[error("not a valid {message} message: {reason}")]
    Malformed {
        /// The message kind being decoded.
        message: &'static str,
        /// What the MessagePack decoder said.
        reason: String,
    },
    /// `v` is newer than this decoder knows; the message is refused, never misread.
    #[error("{message} has schema version {found}; this decoder knows versions up to {VERSION}")]
    UnsupportedVersion {
        /// The message kind being decoded.
        message: &'static str,
        /// The version found.
        found: u64,
    },
    /// A required field is absent.
    #[error("{message} lacks the field `{field}`")]
    MissingField {
        /// The message kind being decoded.
        message: &'static str,
        /// The absent field.
        field: &'static str,
    },
    /// A field is present but its value breaks the contract.
    #[error("{message} field `{field}`: {reason}")]
    InvalidField {
        /// The message kind being decoded.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A site or DN breaks the naming rules.
    #[error("{message} field `{field}`: {source}")]
    Name {
        /// The message kind being decoded.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The naming rule that was broken.
        #[source]
        source: NameError,
    },
    /// The payload disagrees with the subject it was published on.
    #[error("payload {field} {payload:?} disagrees with subject {subject:?}")]
    SubjectMismatch {
        /// The field that disagrees (`call`, `site` or `kind`).
        field: &'static str,
        /// The payload's value.
        payload: String,
        /// The subject.
        subject: String,
    },
    /// The subject itself is not one of the contract's.
    #[error(transparent)]
    Subject(#[from] crate::subject::SubjectError),
}

impl DecodeError {
    /// The short, stable name of this error's kind, for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::Name { .. } => "invalid_name",
            Self::SubjectMismatch { .. } => "subject_mismatch",
            Self::Subject(_) => "bad_subject",
        }
    }
}

/// A message of the wire contract: a MessagePack map with string keys and a `v`.
pub trait Message: Sized {
    /// The message's name in errors.
    const NAME: &'static str;

    /// Appends the encoded message to `buf` (reuse one buffer on hot paths).
    fn encode_into(&self, buf: &mut Vec<u8>);

    /// Decodes and validates one message.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the bytes are not this message as the contract defines it.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;

    /// Encodes the message into a new buffer.
    fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(192);
        self.encode_into(&mut buf);
        buf
    }
}

/// Writes `value` as a MessagePack map with string keys.
pub(crate) fn write_named<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) {
    // Writing into a Vec cannot fail for I/O, and every type passed here serializes only
    // strings, integers, booleans, byte strings, sequences and maps of known length, which
    // rmp-serde always accepts. A failure would be a bug in this crate, not bad input.
    #[allow(clippy::expect_used)]
    rmp_serde::encode::write_named(buf, value).expect("wire types always encode");
}

#[derive(Deserialize)]
struct VersionOnly {
    v: Option<u64>,
}

/// Decodes the wire form `W` of message `name`, checking `v` first so that a newer message is
/// refused as such rather than reported as a confusing shape error, and refusing bytes after
/// the map.
pub(crate) fn read_versioned<'de, W>(name: &'static str, bytes: &'de [u8]) -> Result<W, DecodeError>
where
    W: Deserialize<'de> + Versioned,
{
    match from_slice_bounded::<W>(bytes) {
        Ok(wire) => {
            check_version(name, wire.version())?;
            // A message is one map: anything after it is a corrupted or spliced payload.
            let len = crate::extent::value_len(bytes).unwrap_or(0);
            if len != bytes.len() {
                return Err(DecodeError::Malformed {
                    message: name,
                    reason: format!("{} bytes after the map", bytes.len() - len),
                });
            }
            Ok(wire)
        }
        Err(err) => {
            if let Ok(VersionOnly { v: Some(found) }) = from_slice_bounded(bytes)
                && found > VERSION
            {
                return Err(DecodeError::UnsupportedVersion {
                    message: name,
                    found,
                });
            }
            Err(malformed(name, &err))
        }
    }
}

/// How deep a message may nest (maps and arrays within maps), unknown fields included. The
/// deepest message of the contract, an audit record quoting a request whose extensions nest to
/// the request bound, stays well within it. rmp-serde's own limit (1,024) recurses deep enough
/// to overflow a 2 MiB thread stack in a debug build: the fuzz corpus found such a payload.
pub(crate) const MAX_DEPTH: usize = 32;

/// Decodes one MessagePack value into `T`, refusing nesting deeper than [`MAX_DEPTH`].
fn from_slice_bounded<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut de)
}

/// Refuses a version newer than [`VERSION`] and the meaningless version 0.
pub(crate) fn check_version(name: &'static str, v: u64) -> Result<(), DecodeError> {
    match v {
        VERSION => Ok(()),
        0 => Err(DecodeError::InvalidField {
            message: name,
            field: "v",
            reason: "version 0 does not exist; the first version is 1".into(),
        }),
        found => Err(DecodeError::UnsupportedVersion {
            message: name,
            found,
        }),
    }
}

pub(crate) fn malformed(name: &'static str, err: &dyn std::fmt::Display) -> DecodeError {
    let reason = err.to_string();
    // serde reports an absent field as "missing field `x`": keep it a typed error.
    if let Some(field) = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
        .and_then(static_field)
    {
        return DecodeError::MissingField {
            message: name,
            field,
        };
    }
    DecodeError::Malformed {
        message: name,
        reason,
    }
}

/// Maps a field name from a serde message to the static name used in typed errors.
fn static_field(field: &str) -> Option<&'static str> {
    const FIELDS: &[&str] = &[
        "v",
        "id",
        "call",
        "site",
        "ts",
        "kind",
        "party",
        "dn",
        "role",
        "by",
        "request",
        "seq",
        "parties",
        "supervisors",
        "ok",
        "location",
        "mode",
        "code",
        "message",
        "reply",
        "view_seq",
        "config",
        "key",
        "old",
        "new",
    ];
    FIELDS.iter().copied().find(|f| *f == field)
}

/// A wire form that carries a schema version.
pub(crate) trait Versioned {
    fn version(&self) -> u64;
}

macro_rules! versioned {
    ($($t:ty),* $(,)?) => {
        $(impl crate::codec::Versioned for $t {
            fn version(&self) -> u64 {
                self.v
            }
        })*
    };
}
pub(crate) use versioned;

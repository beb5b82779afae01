//! UUIDs on the wire: written as a 16-byte `bin`, read from `bin` or 36-character text.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use uuid::Uuid;

pub(crate) fn serialize<S: Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(id.as_bytes())
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
    d.deserialize_any(UuidVisitor)
}

struct UuidVisitor;

impl Visitor<'_> for UuidVisitor {
    type Value = Uuid;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a UUID: 16 bytes of bin, or 36 characters of hyphenated text")
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Uuid, E> {
        Uuid::from_slice(b).map_err(|_| E::invalid_length(b.len(), &self))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Uuid, E> {
        if s.len() != 36 {
            return Err(E::invalid_value(de::Unexpected::Str(s), &self));
        }
        Uuid::try_parse(s).map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
    }
}

/// The same for `Option<Uuid>`: nil or absent is `None`.
pub(crate) mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use uuid::Uuid;

    #[derive(Deserialize)]
    struct Wrapped(#[serde(with = "super")] Uuid);

    pub(crate) fn serialize<S: Serializer>(id: &Option<Uuid>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => super::serialize(id, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(id)| id))
    }
}

//! The fast path of decoding a party event: a scanner of the form this crate writes.
//!
//! The projector decodes every event of the log, and a general MessagePack decoder spends most
//! of an event's cost checking and matching its fourteen keys as text. This scanner reads the
//! form [`PartyEvent::encode`](super::PartyEvent) writes (a map of text keys, UUIDs as 16-byte
//! `bin`, unsigned integers, names as short text) straight from the bytes, without allocating.
//!
//! It decides nothing on its own: anything else it meets (an unknown or repeated key, text
//! UUIDs, `nil`, signed integers, a name the contract refuses, bytes after the map, a newer
//! version) makes it give up, and the general decoder reads the message, with its errors. So
//! every message it accepts decodes to what the general decoder would return, which
//! [`PartyEvent::check_fast_path`](super::PartyEvent::check_fast_path) checks in the codec tests
//! (generated events, and changes of them) and in the `event` fuzz target (arbitrary bytes).

use std::borrow::Cow;

use uuid::Uuid;

use super::{EventKind, MonitorMode, Role, Wire};
use crate::DeletedBy;
use crate::codec::VERSION;
use crate::names::{Dn, Site};

/// The wire form of `bytes`, if they are in the form this crate writes; `None` sends them to
/// the general decoder.
pub(super) fn wire(bytes: &[u8]) -> Option<Wire<'_>> {
    let mut r = Reader { bytes, pos: 0 };
    let entries = r.map_len()?;
    let mut f = Fields::default();
    for _ in 0..entries {
        match r.key()? {
            b"v" => set(&mut f.v, r.uint()?)?,
            b"id" => set(&mut f.id, r.uuid()?)?,
            b"call" => set(&mut f.call, r.uuid()?)?,
            b"site" => set(&mut f.site, Site::new(r.text()?).ok()?)?,
            b"ts" => set(&mut f.ts, r.uint()?)?,
            b"kind" => set(&mut f.kind, EventKind::parse(r.text()?)?)?,
            b"party" => set(&mut f.party, r.uuid()?)?,
            b"dn" => set(&mut f.dn, Dn::new(r.text()?).ok()?)?,
            b"role" => set(&mut f.role, role(r.text()?)?)?,
            b"mode" => set(&mut f.mode, mode(r.text()?)?)?,
            b"monitors" => set(&mut f.monitors, r.uuid()?)?,
            b"reason" => set(&mut f.reason, r.text()?)?,
            b"by" => set(&mut f.by, r.deleted_by()?)?,
            b"request" => set(&mut f.request, r.uuid()?)?,
            _ => return None,
        }
    }
    if r.pos != bytes.len() || f.v? != VERSION {
        return None;
    }
    Some(Wire {
        v: VERSION,
        id: f.id?,
        call: f.call?,
        site: f.site?,
        ts: f.ts?,
        kind: f.kind?,
        party: f.party?,
        dn: f.dn,
        role: f.role,
        mode: f.mode,
        monitors: f.monitors,
        reason: f.reason.map(Cow::Borrowed),
        by: f.by,
        request: f.request,
    })
}

/// The keys met so far.
#[derive(Default)]
struct Fields<'a> {
    v: Option<u64>,
    id: Option<Uuid>,
    call: Option<Uuid>,
    site: Option<Site>,
    ts: Option<u64>,
    kind: Option<EventKind>,
    party: Option<Uuid>,
    dn: Option<Dn>,
    role: Option<Role>,
    mode: Option<MonitorMode>,
    monitors: Option<Uuid>,
    reason: Option<&'a str>,
    by: Option<DeletedBy>,
    request: Option<Uuid>,
}

/// Fills a field met for the first time; a repeated key gives up.
fn set<T>(field: &mut Option<T>, value: T) -> Option<()> {
    match field {
        Some(_) => None,
        None => {
            *field = Some(value);
            Some(())
        }
    }
}

fn role(s: &str) -> Option<Role> {
    [
        Role::Agent,
        Role::Supervisor,
        Role::Customer,
        Role::External,
        Role::Ivr,
    ]
    .into_iter()
    .find(|r| r.as_str() == s)
}

fn mode(s: &str) -> Option<MonitorMode> {
    [
        MonitorMode::Mute,
        MonitorMode::Coach,
        MonitorMode::Connect,
        MonitorMode::Normal,
    ]
    .into_iter()
    .find(|m| m.as_str() == s)
}

/// A cursor over the bytes; every read gives up (`None`) on what it does not expect.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let taken = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn be(&mut self, width: usize) -> Option<u64> {
        Some(
            self.take(width)?
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        )
    }

    /// A fixmap or map 16 header.
    fn map_len(&mut self) -> Option<u64> {
        match self.byte()? {
            m @ 0x80..=0x8f => Some(u64::from(m & 0x0f)),
            0xde => self.be(2),
            _ => None,
        }
    }

    /// A key: short text (fixstr).
    fn key(&mut self) -> Option<&'a [u8]> {
        match self.byte()? {
            m @ 0xa0..=0xbf => self.take(usize::from(m & 0x1f)),
            _ => None,
        }
    }

    /// An unsigned integer: positive fixint or uint 8 to 64.
    fn uint(&mut self) -> Option<u64> {
        match self.byte()? {
            m @ 0x00..=0x7f => Some(u64::from(m)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    /// A UUID as 16 bytes of bin 8.
    fn uuid(&mut self) -> Option<Uuid> {
        if self.byte()? != 0xc4 || self.byte()? != 16 {
            return None;
        }
        Uuid::from_slice(self.take(16)?).ok()
    }

    /// Text: fixstr or str 8, 16 or 32, valid UTF-8.
    fn text(&mut self) -> Option<&'a str> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => u64::from(m & 0x1f),
            0xd9 => self.be(1)?,
            0xda => self.be(2)?,
            0xdb => self.be(4)?,
            _ => return None,
        };
        std::str::from_utf8(self.take(usize::try_from(len).ok()?)?).ok()
    }

    /// `by`: a map of `party`, `dn` and `site`, each once.
    fn deleted_by(&mut self) -> Option<DeletedBy> {
        let (mut party, mut dn, mut site) = (None, None, None);
        for _ in 0..self.map_len()? {
            match self.key()? {
                b"party" => set(&mut party, self.uuid()?)?,
                b"dn" => set(&mut dn, Dn::new(self.text()?).ok()?)?,
                b"site" => set(&mut site, Site::new(self.text()?).ok()?)?,
                _ => return None,
            }
        }
        Some(DeletedBy {
            party: party?,
            dn: dn?,
            site: site?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::PartyEvent;

    /// The vectors of other forms, and refused ones, go to the general decoder. (That whatever
    /// the scanner accepts decodes the same way is checked in `tests/codec.rs`, through
    /// [`PartyEvent::check_fast_path`], and by the `event` fuzz target.)
    #[test]
    fn other_forms_go_to_the_general_decoder() {
        let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/");
        for name in [
            "lenient_text_uuids_unknown_keys",
            "refused_bad_dn",
            "refused_missing_role",
            "refused_newer_version",
            "refused_trailing_bytes",
        ] {
            let bytes = std::fs::read(format!("{vectors}{name}.msgpack")).unwrap();
            assert!(!PartyEvent::check_fast_path("ledger.ev", &bytes), "{name}");
        }
    }
}

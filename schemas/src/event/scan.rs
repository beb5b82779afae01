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
//! every message it accepts decodes to what the general decoder would return, which the codec
//! tests check on generated events and on every mutation of them.

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

    use proptest::prelude::*;
    use uuid::Uuid;

    use super::super::{EventBody, Joined, MonitorMode, PartyEvent, Role, Wire};
    use crate::DeletedBy;
    use crate::codec::{self, DecodeError, Message};
    use crate::names::{Dn, Site};
    use crate::subject::EventSubject;

    /// The general decoder alone, without the scanner.
    fn general(bytes: &[u8]) -> Result<PartyEvent, DecodeError> {
        let w: Wire<'_> = codec::read_versioned(PartyEvent::NAME, bytes)?;
        PartyEvent::from_wire(w)
    }

    fn scanned(bytes: &[u8]) -> Option<PartyEvent> {
        super::wire(bytes).and_then(|w| PartyEvent::from_wire(w).ok())
    }

    fn event() -> impl Strategy<Value = PartyEvent> {
        let uuid = || any::<u128>().prop_map(Uuid::from_u128);
        let site = || "[A-Za-z0-9_-]{1,33}".prop_filter_map("a site", |s| Site::new(&s).ok());
        let dn = || "[^@\\s\\p{Cc}]{1,20}".prop_filter_map("a DN", |s| Dn::new(&s).ok());
        let role = prop_oneof![
            Just(Role::Agent),
            Just(Role::Supervisor),
            Just(Role::Customer),
            Just(Role::External),
            Just(Role::Ivr)
        ];
        let mode = prop_oneof![
            Just(MonitorMode::Mute),
            Just(MonitorMode::Coach),
            Just(MonitorMode::Connect),
            Just(MonitorMode::Normal)
        ];
        let body = prop_oneof![
            (dn(), role, mode, proptest::option::of(uuid())).prop_map(|(dn, role, mode, m)| {
                let sup = role == Role::Supervisor;
                EventBody::Joined(Joined {
                    dn,
                    role,
                    mode: if sup { mode } else { MonitorMode::Normal },
                    monitors: m.filter(|_| sup),
                })
            }),
            proptest::option::of(".{0,40}").prop_map(|reason| EventBody::Left { reason }),
            (uuid(), dn(), site(), uuid()).prop_map(|(party, dn, site, request)| {
                EventBody::Deleted {
                    by: DeletedBy { party, dn, site },
                    request,
                }
            }),
        ];
        (uuid(), uuid(), site(), any::<u64>(), uuid(), body).prop_map(
            |(id, call, site, ts, party, body)| PartyEvent {
                id,
                call,
                site,
                ts,
                party,
                body,
            },
        )
    }

    /// Changes the bytes: overwrites, removes or inserts one byte, or cuts the end.
    fn mutated(mut bytes: Vec<u8>, how: u8, at: usize, value: u8) -> Vec<u8> {
        let at = at % (bytes.len() + 1);
        match how % 4 {
            0 if at < bytes.len() => bytes[at] = value,
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, value),
            _ => bytes.truncate(at),
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// What this crate writes takes the fast path, and decodes to itself.
        #[test]
        fn written_events_are_scanned(e in event()) {
            let bytes = e.encode();
            prop_assert_eq!(scanned(&bytes), Some(e.clone()));
            prop_assert_eq!(general(&bytes).ok(), Some(e));
        }

        /// Whatever the scanner accepts, the general decoder decodes to the same event.
        #[test]
        fn the_scanner_agrees_with_the_general_decoder(
            e in event(),
            changes in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = e.encode();
            for (how, at, value) in changes {
                bytes = mutated(bytes, how, at, value);
            }
            if let Some(fast) = scanned(&bytes) {
                prop_assert_eq!(general(&bytes).ok(), Some(fast));
            }
        }

        /// The subject comparison agrees with parsing the subject and checking it.
        #[test]
        fn the_subject_comparison_agrees_with_parsing(
            e in event(),
            other in event(),
            how in any::<u8>(),
            at in any::<usize>(),
            value in prop_oneof![Just(b'.'), Just(b'A'), Just(b'a'), Just(b'-'), any::<u8>()],
        ) {
            let subject = match how % 3 {
                0 => e.subject(),
                1 => other.subject(),
                _ => String::from_utf8_lossy(&mutated(e.subject().into_bytes(), how / 3, at, value))
                    .into_owned(),
            };
            let checked = EventSubject::parse(&subject)
                .is_ok_and(|parsed| e.check_subject(&parsed, &subject).is_ok());
            prop_assert_eq!(e.is_on(&subject), checked, "{}", subject);
        }
    }

    #[test]
    fn other_forms_go_to_the_general_decoder() {
        let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/");
        let lenient =
            std::fs::read(format!("{vectors}lenient_text_uuids_unknown_keys.msgpack")).unwrap();
        assert!(super::wire(&lenient).is_none());
        for name in [
            "refused_bad_dn",
            "refused_missing_role",
            "refused_newer_version",
            "refused_trailing_bytes",
        ] {
            let bytes = std::fs::read(format!("{vectors}{name}.msgpack")).unwrap();
            assert!(scanned(&bytes).is_none(), "{name}");
        }
    }
}

//! Codec properties: round trips, refusals, and no panic on arbitrary bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use ledger_schemas::{
    DecodeError, DeleteReply, DeleteRequest, DeletedBy, Dn, EventBody, EventKind, Joined, LctList,
    Message, MonitorMode, PartyEvent, Role, Site,
};
use proptest::prelude::*;
use uuid::Uuid;

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn site() -> impl Strategy<Value = Site> {
    "[A-Za-z0-9_-]{1,32}".prop_map(|s| Site::new(&s).unwrap())
}

fn dn() -> impl Strategy<Value = Dn> {
    "[^@\\s\\p{Cc}]{1,16}"
        .prop_filter("fits 64 bytes", |s| s.len() <= 64)
        .prop_map(|s| Dn::new(&s).unwrap())
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Agent),
        Just(Role::Supervisor),
        Just(Role::Customer),
        Just(Role::External),
        Just(Role::Ivr)
    ]
}

fn mode() -> impl Strategy<Value = MonitorMode> {
    prop_oneof![
        Just(MonitorMode::Mute),
        Just(MonitorMode::Coach),
        Just(MonitorMode::Connect),
        Just(MonitorMode::Normal)
    ]
}

fn body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        (dn(), role(), mode(), proptest::option::of(uuid())).prop_map(|(dn, role, mode, m)| {
            let sup = role == Role::Supervisor;
            EventBody::Joined(Joined {
                dn,
                role,
                mode: if sup { mode } else { MonitorMode::Normal },
                monitors: m.filter(|_| sup),
            })
        }),
        proptest::option::of(".{0,20}").prop_map(|reason| EventBody::Left { reason }),
        (uuid(), dn(), site(), uuid()).prop_map(|(party, dn, site, request)| {
            EventBody::Deleted {
                by: DeletedBy { party, dn, site },
                request,
            }
        }),
    ]
}

fn event() -> impl Strategy<Value = PartyEvent> {
    (uuid(), uuid(), site(), any::<u64>(), uuid(), body()).prop_map(
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_event_round_trips_on_its_subject(e in event()) {
        let bytes = e.encode();
        prop_assert_eq!(PartyEvent::decode_on(&e.subject(), &bytes).unwrap(), e);
    }

    /// What the ledger writes takes the decoder's fast path.
    #[test]
    fn written_events_take_the_fast_path(e in event()) {
        prop_assert!(PartyEvent::check_fast_path(&e.subject(), &e.encode()));
    }

    /// Whatever the fast path accepts, changed bytes or subjects included, decodes as the
    /// general decoder decodes it (`check_fast_path` panics otherwise).
    #[test]
    fn the_fast_path_agrees_with_the_general_decoder(
        e in event(),
        other in event(),
        changes in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
        subject_change in (any::<u8>(), any::<usize>(), prop_oneof![Just(b'.'), Just(b'A'), Just(b'-'), any::<u8>()]),
    ) {
        let mut bytes = e.encode();
        for (how, at, value) in changes {
            bytes = changed(bytes, how, at, value);
        }
        let (how, at, value) = subject_change;
        let subject = match how % 3 {
            0 => e.subject(),
            1 => other.subject(),
            _ => String::from_utf8_lossy(&changed(e.subject().into_bytes(), how / 3, at, value))
                .into_owned(),
        };
        PartyEvent::check_fast_path(&subject, &bytes);
        PartyEvent::check_fast_path(&subject, &e.encode());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = PartyEvent::decode(&bytes);
        let _ = LctList::decode(&bytes);
        let _ = DeleteReply::decode(&bytes);
        let _ = DeleteRequest::decode(&bytes);
    }

    #[test]
    fn truncated_events_are_refused_not_misread(e in event(), cut in 1usize..64) {
        let bytes = e.encode();
        let cut = cut.min(bytes.len());
        prop_assert!(PartyEvent::decode(&bytes[..bytes.len() - cut]).is_err());
    }

    #[test]
    fn bytes_after_a_message_are_refused(
        e in event(),
        extra in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut bytes = e.encode();
        let len = bytes.len();
        bytes.extend_from_slice(&extra);
        let err = PartyEvent::decode(&bytes).unwrap_err();
        let after = format!("{} bytes after the map", extra.len());
        prop_assert!(err.to_string().contains(&after), "{}", err);
        prop_assert!(PartyEvent::decode(&bytes[..len]).is_ok());
    }
}

/// Changes `bytes`: overwrites, removes or inserts one byte, or cuts the end.
fn changed(mut bytes: Vec<u8>, how: u8, at: usize, value: u8) -> Vec<u8> {
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

fn sample() -> PartyEvent {
    PartyEvent {
        id: Uuid::from_u128(1),
        call: Uuid::from_u128(2),
        site: Site::new("SiteA").unwrap(),
        ts: 5,
        party: Uuid::from_u128(3),
        body: EventBody::Left { reason: None },
    }
}

#[test]
fn payload_that_disagrees_with_its_subject_is_refused() {
    let e = sample();
    let bytes = e.encode();
    let other_site = ledger_schemas::subject::event(e.call, Site::new("SiteB").unwrap(), e.kind());
    let err = PartyEvent::decode_on(&other_site, &bytes).unwrap_err();
    assert!(
        matches!(err, DecodeError::SubjectMismatch { field: "site", .. }),
        "{err}"
    );
    let other_kind = ledger_schemas::subject::event(e.call, e.site, EventKind::PartyJoined);
    let err = PartyEvent::decode_on(&other_kind, &bytes).unwrap_err();
    assert!(
        matches!(err, DecodeError::SubjectMismatch { field: "kind", .. }),
        "{err}"
    );
    let other_call = ledger_schemas::subject::event(Uuid::from_u128(9), e.site, e.kind());
    let err = PartyEvent::decode_on(&other_call, &bytes).unwrap_err();
    assert!(
        matches!(err, DecodeError::SubjectMismatch { field: "call", .. }),
        "{err}"
    );
    let err = PartyEvent::decode_on("ledger.ev.nope", &bytes).unwrap_err();
    assert!(matches!(err, DecodeError::Subject(_)), "{err}");
}

#[test]
fn request_errors_keep_what_could_be_read() {
    let mut map = vec![
        ("v".into(), rmpv::Value::from(1)),
        (
            "request".into(),
            rmpv::Value::Binary(Uuid::from_u128(7).as_bytes().to_vec()),
        ),
        (
            "call".into(),
            rmpv::Value::Binary(Uuid::from_u128(8).as_bytes().to_vec()),
        ),
        ("this_dn".into(), "7001".into()),
    ];
    let encode = |m: &Vec<(rmpv::Value, rmpv::Value)>| {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, &rmpv::Value::Map(m.clone())).unwrap();
        b
    };
    let raw = DeleteRequest::read_value(&encode(&map)).unwrap();
    assert_eq!(
        DeleteRequest::ids(&raw),
        (Some(Uuid::from_u128(7)), Some(Uuid::from_u128(8)))
    );
    assert!(matches!(
        DeleteRequest::from_value(&raw).unwrap_err(),
        DecodeError::MissingField {
            field: "other_dn",
            ..
        }
    ));
    map.push(("other_dn".into(), "7002".into()));
    map[0].1 = 3.into();
    assert!(matches!(
        DeleteRequest::decode(&encode(&map)).unwrap_err(),
        DecodeError::UnsupportedVersion { found: 3, .. }
    ));
    map[0].1 = 1.into();
    map.push(("x-unknown".into(), "ignored".into()));
    let req = DeleteRequest::decode(&encode(&map)).unwrap();
    assert_eq!(req.this_dn, Dn::new("7001").unwrap());
    for undecodable in [&b""[..], b"\xc1", b"\x93\x01\x02\x03", b"\x80\x00"] {
        assert!(
            DeleteRequest::read_value(undecodable).is_err(),
            "{undecodable:?}"
        );
    }
}

/// An unknown field nested far deeper than any message of the contract is refused as malformed,
/// on a small stack too (the decoder's depth bound, not the stack, stops it).
#[test]
fn nesting_past_the_depth_bound_is_refused_on_a_small_stack() {
    let mut deep = vec![0x81, 0xa1, b'x']; // {"x": ...
    deep.extend(std::iter::repeat_n(0x91, 2_000)); // [[[ ...
    deep.push(0xc0);
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || PartyEvent::decode(&deep).map(|_| ()).map_err(|e| e.kind()))
        .unwrap();
    assert_eq!(handle.join().unwrap(), Err("malformed"));
}

//! Golden vectors: one `.msgpack` file per message shape in `schemas/vectors/`, described in
//! `schemas/vectors/vectors.json`. Regenerate with `UPDATE_VECTORS=1 cargo test -p ledger-schemas
//! --test vectors` after a deliberate contract change, and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::PathBuf;

use ledger_schemas::{
    Accepted, AgentNow, AuditRecord, CallNow, Counts, DecodeError, DeleteReply, DeleteRequest,
    DeletedBy, Dn, EventBody, Figures, Joined, LctList, LctParty, LctSupervisor, Message,
    MonitorMode, OptionChanged, OptionName, PartyEvent, Refusal, RefusalCode, Role, Site, SiteNow,
    SiteOptions, Target,
};
use rmpv::Value;
use uuid::Uuid;

fn id(n: u8) -> Uuid {
    Uuid::parse_str(&format!("0192f3a4-5b6c-7d8e-9f01-0000000000{n:02x}")).unwrap()
}
const CALL: u8 = 0xca;
const TS: u64 = 1_764_115_200_000_000;

fn site(s: &str) -> Site {
    Site::new(s).unwrap()
}
fn dn(s: &str) -> Dn {
    Dn::new(s).unwrap()
}

fn event(n: u8, site_: &str, party: u8, body: EventBody) -> PartyEvent {
    PartyEvent {
        id: id(n),
        call: id(CALL),
        site: site(site_),
        ts: TS + u64::from(n),
        party: id(party),
        body,
    }
}

fn joined(d: &str, role: Role) -> EventBody {
    EventBody::Joined(Joined {
        dn: dn(d),
        role,
        mode: MonitorMode::Normal,
        monitors: None,
    })
}

fn parties() -> Vec<LctParty> {
    vec![
        LctParty {
            party: id(1),
            dn: dn("7001"),
            location: site("SiteA"),
            role: Role::Agent,
        },
        LctParty {
            party: id(2),
            dn: dn("+14155550100"),
            location: site("SiteA"),
            role: Role::Customer,
        },
        LctParty {
            party: id(3),
            dn: dn("7001"),
            location: site("SiteB"),
            role: Role::Agent,
        },
    ]
}

fn request() -> DeleteRequest {
    DeleteRequest {
        request: id(0x77),
        call: id(CALL),
        this_dn: dn("7001"),
        other_dn: Target::DnAt(dn("7001"), site("SiteB")),
        reasons: BTreeMap::new(),
        extensions: BTreeMap::new(),
    }
}

/// Checks a vector's bytes with this crate's decoder.
type Check = Box<dyn Fn(&[u8])>;

struct Vector {
    file: &'static str,
    message: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    check: Check,
}

fn canonical<M: Message + PartialEq + std::fmt::Debug + 'static>(
    file: &'static str,
    description: &'static str,
    value: M,
) -> Vector {
    let bytes = value.encode();
    Vector {
        file,
        message: M::NAME,
        description,
        bytes,
        check: Box::new(move |b| {
            let decoded = M::decode(b).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(decoded, value, "{file} decodes to another value");
            assert_eq!(
                decoded.encode(),
                b,
                "{file} does not re-encode byte for byte"
            );
        }),
    }
}

/// A vector written by hand as a MessagePack value, not by this crate's encoder.
fn raw(
    file: &'static str,
    message: &'static str,
    description: &'static str,
    value: Value,
    check: impl Fn(&[u8]) + 'static,
) -> Vector {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).unwrap();
    Vector {
        file,
        message,
        description,
        bytes,
        check: Box::new(check),
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}
fn bin(u: Uuid) -> Value {
    Value::Binary(u.as_bytes().to_vec())
}

fn joined_agent_map(extra: Vec<(&str, Value)>) -> Vec<(&'static str, Value)> {
    let mut m: Vec<(&'static str, Value)> = vec![
        ("v", 1.into()),
        ("id", bin(id(1))),
        ("call", bin(id(CALL))),
        ("site", "SiteA".into()),
        ("ts", (TS + 1).into()),
        ("kind", "party_joined".into()),
        ("party", bin(id(1))),
        ("dn", "7001".into()),
        ("role", "agent".into()),
    ];
    for (k, v) in extra {
        let k: &'static str = Box::leak(k.to_owned().into_boxed_str());
        m.push((k, v));
    }
    m
}

fn vectors() -> Vec<Vector> {
    let agent_joined = event(1, "SiteA", 1, joined("7001", Role::Agent));
    let supervisor = event(
        4,
        "SiteB",
        4,
        EventBody::Joined(Joined {
            dn: dn("7100"),
            role: Role::Supervisor,
            mode: MonitorMode::Coach,
            monitors: Some(id(3)),
        }),
    );
    let by = DeletedBy {
        party: id(1),
        dn: dn("7001"),
        site: site("SiteA"),
    };
    let accepted = DeleteReply {
        request: Some(id(0x77)),
        outcome: Ok(Accepted {
            seq: 42,
            event: id(0x78),
            parties: parties()[..2].to_vec(),
        }),
    };
    let mut full_request = request();
    full_request.other_dn = Target::Party(id(3));
    full_request
        .reasons
        .insert("comment".into(), "wrong transfer".into());
    full_request
        .extensions
        .insert("AttributeTimeout".into(), "5".into());
    let request_value = {
        let bytes = request().encode();
        rmpv::decode::read_value(&mut &bytes[..]).unwrap()
    };
    let agent_joined_copy = agent_joined.clone();
    vec![
        canonical(
            "party_joined_agent.msgpack",
            "An agent (DN 7001) joins the call at SiteA. `mode` and `monitors` are omitted for roles other than supervisor.",
            agent_joined,
        ),
        canonical(
            "party_joined_customer.msgpack",
            "The customer joins the call at SiteA; a DN may hold `+` and digits.",
            event(2, "SiteA", 2, joined("+14155550100", Role::Customer)),
        ),
        canonical(
            "party_joined_supervisor.msgpack",
            "A supervisor joins at SiteB in coach mode, monitoring party ...03. Supervisors always carry `mode`.",
            supervisor,
        ),
        canonical(
            "party_left_hangup.msgpack",
            "Party ...02 leaves the call at SiteA with reason `hangup`.",
            event(
                5,
                "SiteA",
                2,
                EventBody::Left {
                    reason: Some("hangup".into()),
                },
            ),
        ),
        canonical(
            "party_left_no_reason.msgpack",
            "Party ...04 leaves without a reason: the `reason` key is omitted.",
            event(6, "SiteB", 4, EventBody::Left { reason: None }),
        ),
        canonical(
            "party_deleted.msgpack",
            "The agent 7001 at SiteA deletes party ...03 (located at SiteB) by request ...77; published by SiteA.",
            event(
                7,
                "SiteA",
                3,
                EventBody::Deleted {
                    by,
                    request: id(0x77),
                },
            ),
        ),
        canonical(
            "lct_list_conference.msgpack",
            "SiteA's LCTParty list of a three-party conference with one supervisor, after stream sequence 4.",
            LctList {
                call: id(CALL),
                site: site("SiteA"),
                seq: 4,
                ts: TS + 4,
                parties: parties(),
                supervisors: vec![LctSupervisor {
                    party: id(4),
                    dn: dn("7100"),
                    location: site("SiteB"),
                    mode: MonitorMode::Coach,
                    monitors: Some(id(3)),
                }],
            },
        ),
        canonical(
            "lct_list_ended.msgpack",
            "The last list of a call that ended in SiteB's view: no parties, no supervisors.",
            LctList {
                call: id(CALL),
                site: site("SiteB"),
                seq: 9,
                ts: TS + 9,
                parties: vec![],
                supervisors: vec![],
            },
        ),
        canonical(
            "stats_figures.msgpack",
            "SiteA's figures for the 15-minute slot starting 2025-11-26T00:00:00Z (`start` in microseconds, `minutes` 15): two calls, one a conference, one observed; durations in microseconds; refusals by code.",
            Figures {
                site: site("SiteA"),
                start: TS,
                seq: 120,
                audit_seq: 7,
                counts: Counts {
                    calls: 2,
                    conferences: 1,
                    observed: 1,
                    call_us: 540_000_000,
                    conference_us: 180_000_000,
                    observed_us: 120_000_000,
                    observed_mute_us: 0,
                    observed_coach_us: 120_000_000,
                    observed_connect_us: 0,
                    observed_normal_us: 0,
                    deletes_local: 1,
                    deletes_remote: 1,
                    refused: BTreeMap::from([("not_authorized".to_owned(), 1)]),
                },
            },
        ),
        canonical(
            "stats_site_now.msgpack",
            "SiteA now: three calls in progress with a party there, one a conference, one observed.",
            SiteNow {
                site: site("SiteA"),
                seq: 120,
                ts: TS + 120,
                calls: 3,
                conferences: 1,
                observed: 1,
            },
        ),
        canonical(
            "stats_call_now.msgpack",
            "A call in progress at SiteA, observed by supervisor 7100 (coach) monitoring agent 7001; `agents` are SiteA's agents present, each with its call's observed flag.",
            CallNow {
                call: id(CALL),
                site: site("SiteA"),
                seq: 5,
                ts: TS + 5,
                ended: false,
                conference: true,
                observed: true,
                observers: vec![LctSupervisor {
                    party: id(5),
                    dn: dn("7100"),
                    location: site("SiteA"),
                    mode: MonitorMode::Coach,
                    monitors: Some(id(1)),
                }],
                agents: vec![AgentNow {
                    party: id(1),
                    dn: dn("7001"),
                    observed: true,
                }],
            },
        ),
        canonical(
            "stats_call_ended.msgpack",
            "The last message about a call at SiteA: no party of SiteA is left in it (the key is deleted).",
            CallNow {
                call: id(CALL),
                site: site("SiteA"),
                seq: 9,
                ts: TS + 9,
                ended: true,
                conference: false,
                observed: false,
                observers: vec![],
                agents: vec![],
            },
        ),
        canonical(
            "delete_request_dn_at_site.msgpack",
            "TDeleteFromConference: 7001 asks to delete 7001@SiteB; no reasons or extensions (keys omitted).",
            request(),
        ),
        canonical(
            "delete_request_party_id.msgpack",
            "TDeleteFromConference naming the target by party id, with reasons and extensions.",
            full_request,
        ),
        canonical(
            "delete_reply_ok.msgpack",
            "Accepted: the party_deleted event ...78 is at stream sequence 42; `parties` is the requester's view after it.",
            accepted.clone(),
        ),
        canonical(
            "delete_reply_ambiguous.msgpack",
            "Refused: the bare DN 7001 matches two present parties; both are listed as candidates.",
            DeleteReply {
                request: Some(id(0x79)),
                outcome: Err(Refusal {
                    code: RefusalCode::AmbiguousParty,
                    message: "DN 7001 matches 2 parties; name one by party id or dn@site".into(),
                    candidates: vec![parties()[0], parties()[2]],
                }),
            },
        ),
        canonical(
            "delete_reply_remote_delete_disabled.msgpack",
            "Refused with terr 1005: the target is at another site and sip-remote-del-from-conf is false. No `candidates` key.",
            DeleteReply {
                request: Some(id(0x7a)),
                outcome: Err(Refusal::new(
                    RefusalCode::RemoteDeleteDisabled,
                    "SiteA does not accept deleting a party located at SiteB",
                )),
            },
        ),
        canonical(
            "delete_reply_bad_request.msgpack",
            "Refused: the request could not be decoded, so the reply has no `request` key.",
            DeleteReply {
                request: None,
                outcome: Err(Refusal::new(
                    RefusalCode::BadRequest,
                    "not a valid TDeleteFromConference request: expected a map",
                )),
            },
        ),
        canonical(
            "audit_record.msgpack",
            "The audit record of the accepted delete: the request as received, the reply as sent, the view's sequence and the options in force.",
            AuditRecord {
                id: id(0x80),
                ts: TS + 100,
                site: site("SiteA"),
                request: request_value,
                request_bytes: None,
                reply: accepted,
                view_seq: 41,
                config: SiteOptions {
                    call_info: true,
                    remote_delete: true,
                    ..SiteOptions::default()
                },
            },
        ),
        canonical(
            "audit_record_past_bounds.msgpack",
            "The audit record of a request past the bounds (a 300-byte other_dn, 412 bytes in all): refused with bad_request before anything was appended; the request is kept with other_dn cut to its bound of 128 bytes, and `request_bytes` gives the size received.",
            AuditRecord {
                id: id(0x81),
                ts: TS + 101,
                site: site("SiteA"),
                request: map(vec![
                    ("v", 1.into()),
                    ("request", bin(id(0x7b))),
                    ("call", bin(id(CALL))),
                    ("this_dn", "7001".into()),
                    ("other_dn", "9".repeat(128).into()),
                ]),
                request_bytes: Some(412),
                reply: DeleteReply {
                    request: Some(id(0x7b)),
                    outcome: Err(Refusal::new(
                        RefusalCode::BadRequest,
                        format!(
                            "other_dn is 300 bytes; at most 128 are allowed: \"{}…",
                            "9".repeat(63)
                        ),
                    )),
                },
                view_seq: 0,
                config: SiteOptions::default(),
            },
        ),
        canonical(
            "option_changed.msgpack",
            "SiteA's sip-remote-del-from-conf changed from unset to `true`, recorded by SiteA's leading projector on ledger.audit.SiteA.options. `refused` is omitted when false.",
            OptionChanged {
                id: id(0x90),
                ts: TS + 200,
                site: site("SiteA"),
                option: OptionName::SipRemoteDelFromConf,
                old: None,
                new: Some("true".into()),
                refused: false,
            },
        ),
        canonical(
            "option_changed_refused.msgpack",
            "An invalid value (`maybe`) written for SiteA's sip-enable-call-info: recorded with `refused: true`; `true` stays in force.",
            OptionChanged {
                id: id(0x91),
                ts: TS + 201,
                site: site("SiteA"),
                option: OptionName::SipEnableCallInfo,
                old: Some("true".into()),
                new: Some("maybe".into()),
                refused: true,
            },
        ),
        raw(
            "lenient_text_uuids_unknown_keys.msgpack",
            "party event",
            "Accepted by decoders: UUIDs as 36-character text and a key this version does not know (`x-trace`). Decodes to party_joined_agent.",
            map(joined_agent_map(vec![("x-trace", "abc".into())])
                .into_iter()
                .map(|(k, v)| match (k, &v) {
                    ("id" | "call" | "party", Value::Binary(b)) => {
                        (k, Uuid::from_slice(b).unwrap().to_string().into())
                    }
                    _ => (k, v),
                })
                .collect()),
            move |b| assert_eq!(PartyEvent::decode(b).unwrap(), agent_joined_copy),
        ),
        raw(
            "refused_newer_version.msgpack",
            "party event",
            "Refused by decoders: `v` is 2, newer than this contract; never misread as version 1.",
            map(joined_agent_map(vec![])
                .into_iter()
                .map(|(k, v)| if k == "v" { (k, 2.into()) } else { (k, v) })
                .collect()),
            |b| {
                assert!(matches!(
                    PartyEvent::decode(b),
                    Err(DecodeError::UnsupportedVersion { found: 2, .. })
                ))
            },
        ),
        raw(
            "refused_missing_role.msgpack",
            "party event",
            "Refused by decoders: a party_joined without `role`.",
            map(joined_agent_map(vec![])
                .into_iter()
                .filter(|(k, _)| *k != "role")
                .collect()),
            |b| {
                assert!(matches!(
                    PartyEvent::decode(b),
                    Err(DecodeError::MissingField { field: "role", .. })
                ))
            },
        ),
        raw(
            "refused_bad_dn.msgpack",
            "party event",
            "Refused by decoders: the DN holds an `@`.",
            map(joined_agent_map(vec![])
                .into_iter()
                .map(|(k, v)| {
                    if k == "dn" {
                        (k, "7001@SiteA".into())
                    } else {
                        (k, v)
                    }
                })
                .collect()),
            |b| {
                let err = PartyEvent::decode(b).unwrap_err();
                assert!(err.to_string().contains("'@'"), "{err}");
            },
        ),
        {
            let mut v = raw(
                "refused_trailing_bytes.msgpack",
                "party event",
                "Refused by decoders: a valid party_joined map followed by one more byte (nil). A message is exactly one map; `trailing_bytes` says how many bytes follow it.",
                map(joined_agent_map(vec![])),
                |b| {
                    let err = PartyEvent::decode(b).unwrap_err();
                    assert!(err.to_string().contains("1 bytes after the map"), "{err}");
                },
            );
            v.bytes.push(0xc0);
            v
        },
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// The message as plain JSON: 16-byte binaries (always UUIDs in this contract) as UUID text.
fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => i
            .as_u64()
            .map(J::from)
            .or_else(|| i.as_i64().map(J::from))
            .unwrap(),
        Value::String(s) => J::String(s.as_str().unwrap().to_owned()),
        Value::Binary(b) if b.len() == 16 => J::String(Uuid::from_slice(b).unwrap().to_string()),
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), to_json(v)))
                .collect(),
        ),
        other => panic!("no JSON form for {other}"),
    }
}

fn description(vs: &[Vector]) -> serde_json::Value {
    let entries: Vec<_> = vs
        .iter()
        .map(|v| {
            let mut rest = &v.bytes[..];
            let value = rmpv::decode::read_value(&mut rest).unwrap();
            let mut entry = serde_json::json!({
                "file": v.file,
                "message": v.message,
                "description": v.description,
                "canonical": !v.file.starts_with("lenient") && !v.file.starts_with("refused"),
                "fields": to_json(&value),
            });
            if !rest.is_empty() {
                entry["trailing_bytes"] = rest.len().into();
            }
            entry
        })
        .collect();
    serde_json::json!({
        "contract_version": 1,
        "note": "One MessagePack file per message shape. `fields` is the decoded map in key order, with 16-byte binaries (UUIDs) shown as UUID text. A canonical vector is what an encoder of this contract writes, byte for byte; lenient vectors must be accepted by decoders; refused vectors must be refused. `trailing_bytes`, where present, counts the bytes after the map.",
        "vectors": entries,
    })
}

#[test]
fn golden_vectors_round_trip_byte_for_byte() {
    let vs = vectors();
    let json_path = dir().join("vectors.json");
    let json = serde_json::to_string_pretty(&description(&vs)).unwrap() + "\n";
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        for v in &vs {
            std::fs::write(dir().join(v.file), &v.bytes).unwrap();
        }
        std::fs::write(&json_path, &json).unwrap();
    }
    for v in &vs {
        let on_disk = std::fs::read(dir().join(v.file))
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_VECTORS=1 writes it)", v.file));
        assert_eq!(
            on_disk, v.bytes,
            "{} differs from the encoder's bytes",
            v.file
        );
        (v.check)(&on_disk);
    }
    assert_eq!(
        std::fs::read_to_string(&json_path).unwrap(),
        json,
        "vectors.json is stale (UPDATE_VECTORS=1 rewrites it)"
    );
}

#[test]
fn every_vector_file_is_described() {
    let described: Vec<_> = vectors().iter().map(|v| v.file).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".msgpack") {
            assert!(
                described.contains(&name.as_str()),
                "{name} is not described"
            );
        }
    }
}

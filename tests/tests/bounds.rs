//! The contract's bounds on TDeleteFromConference requests, against a real server: a request at
//! each bound is decided and audited as received; one past a bound is refused with
//! `bad_request` before anything is appended, audited cut to the bounds with `request_bytes`,
//! and a resend is answered the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ledger_schemas::{AuditRecord, DeleteReply, Message, RefusalCode, Role, bounds};
use rmpv::Value;
use uuid::Uuid;

/// A conference at SiteA of a customer and agents 7001..=7020, the requester being 7001.
async fn conference(l: &Ledger) -> CallBuilder {
    let c = CallBuilder::new();
    l.publish(&c.join("SiteA", Uuid::now_v7(), "+14155550100", Role::Customer))
        .await;
    for n in 7001..=7020 {
        l.publish(&c.join("SiteA", Uuid::now_v7(), &n.to_string(), Role::Agent))
            .await;
    }
    c
}

fn text(s: &str) -> Value {
    Value::from(s)
}

fn entries(n: usize, key_len: usize, value_len: usize) -> Vec<(Value, Value)> {
    (0..n)
        .map(|i| {
            (
                text(&format!("{i:0>key_len$}")),
                text(&"v".repeat(value_len)),
            )
        })
        .collect()
}

/// A request map: `request` id, the call, 7001 asking to delete `other_dn`.
fn request(
    id: Uuid,
    call: Uuid,
    other_dn: Value,
    reasons: Vec<(Value, Value)>,
    extensions: Vec<(Value, Value)>,
) -> Vec<u8> {
    let map = Value::Map(vec![
        (text("v"), Value::from(1)),
        (text("request"), Value::Binary(id.as_bytes().to_vec())),
        (text("call"), Value::Binary(call.as_bytes().to_vec())),
        (text("this_dn"), text("7001")),
        (text("other_dn"), other_dn),
        (text("reasons"), Value::Map(reasons)),
        (text("extensions"), Value::Map(extensions)),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &map).unwrap();
    bytes
}

/// A request deleting `other_dn`, padded with one extension to exactly `size` bytes.
fn padded(id: Uuid, call: Uuid, other_dn: &str, size: usize) -> Vec<u8> {
    (0..bounds::VALUE_BYTES)
        .map(|pad| {
            let mut ext = entries(15, 4, 500);
            ext.push((text("pad"), text(&"p".repeat(pad))));
            request(id, call, text(other_dn), vec![], ext)
        })
        .find(|b| b.len() == size)
        .unwrap()
}

async fn record_of(l: &Ledger, call: Uuid, id: Uuid) -> Vec<AuditRecord> {
    l.audit(call)
        .await
        .into_iter()
        .filter(|r| r.reply.request == Some(id))
        .collect()
}

#[tokio::test]
async fn a_request_at_each_bound_is_decided_and_audited_as_received() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA"], test_config());
    let c = conference(&l).await;
    let call = c.call;
    let at_bound = [
        (
            "32 reasons",
            request(
                Uuid::now_v7(),
                call,
                text("7002"),
                entries(32, 4, 4),
                vec![],
            ),
        ),
        (
            "32 extensions",
            request(
                Uuid::now_v7(),
                call,
                text("7003"),
                vec![],
                entries(32, 4, 4),
            ),
        ),
        (
            "a 64-byte key",
            request(
                Uuid::now_v7(),
                call,
                text("7004"),
                entries(1, 64, 4),
                vec![],
            ),
        ),
        (
            "a 512-byte value",
            request(
                Uuid::now_v7(),
                call,
                text("7005"),
                vec![],
                entries(1, 4, 512),
            ),
        ),
        (
            "8192 bytes",
            padded(Uuid::now_v7(), call, "7006", bounds::REQUEST_BYTES),
        ),
    ];
    for (what, bytes) in at_bound {
        let reply = DeleteReply::decode(&l.request_raw("SiteA", bytes.clone()).await).unwrap();
        assert!(reply.outcome.is_ok(), "{what}: {reply:?}");
        let id = reply.request.unwrap();
        let records = record_of(&l, call, id).await;
        assert_eq!(records.len(), 1, "{what}");
        assert_eq!(records[0].request_bytes, None, "{what}: within the bounds");
        let mut sent = Vec::new();
        rmpv::encode::write_value(&mut sent, &records[0].request).unwrap();
        assert_eq!(sent, bytes, "{what}: audited as received");
    }
    assert_eq!(l.deletions(call).await.len(), 5);
    // other_dn's bound (128 bytes) is above any name a target can have: at it, the request is
    // refused by the naming rule, not by the bound.
    let id = Uuid::now_v7();
    let reply = DeleteReply::decode(
        &l.request_raw(
            "SiteA",
            request(id, call, text(&"9".repeat(128)), vec![], vec![]),
        )
        .await,
    )
    .unwrap();
    let refusal = reply.outcome.unwrap_err();
    assert_eq!(refusal.code, RefusalCode::BadRequest);
    assert!(
        refusal.message.contains("at most 64") && !refusal.message.contains("at most 128"),
        "{}",
        refusal.message
    );
    assert_eq!(record_of(&l, call, id).await[0].request_bytes, None);
    serving.stop().await;
}

#[tokio::test]
async fn a_request_past_each_bound_is_refused_before_anything_is_appended_and_audited_cut() {
    let l = Ledger::start().await;
    let serving = l.serve(&["SiteA"], test_config());
    let c = conference(&l).await;
    let call = c.call;
    let huge = (0..1700)
        .map(|i| (text(&format!("k{i:0>60}")), text(&"x".repeat(500))))
        .collect::<Vec<_>>();
    let past = [
        (
            "other_dn is 129 bytes; at most 128",
            request(Uuid::now_v7(), call, text(&"9".repeat(129)), vec![], vec![]),
        ),
        (
            "reasons has 33 entries; at most 32",
            request(
                Uuid::now_v7(),
                call,
                text("7002"),
                entries(33, 4, 4),
                vec![],
            ),
        ),
        (
            "a key of extensions is 65 bytes; at most 64",
            request(
                Uuid::now_v7(),
                call,
                text("7002"),
                vec![],
                entries(1, 65, 4),
            ),
        ),
        (
            "is 513 bytes; at most 512",
            request(
                Uuid::now_v7(),
                call,
                text("7002"),
                entries(1, 4, 513),
                vec![],
            ),
        ),
        (
            "the request is 8193 bytes as encoded; at most 8192",
            padded(Uuid::now_v7(), call, "7002", bounds::REQUEST_BYTES + 1),
        ),
        // As found: a valid delete whose extensions fill the server's payload limit, and a
        // 300 KB binary other_dn.
        (
            "extensions has 1700 entries; at most 32",
            request(Uuid::now_v7(), call, text("7002"), vec![], huge),
        ),
        (
            "other_dn is 300000 bytes; at most 128",
            request(
                Uuid::now_v7(),
                call,
                Value::Binary(vec![0x37; 300_000]),
                vec![],
                vec![],
            ),
        ),
    ];
    let last = l
        .stores
        .events
        .clone()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    for (says, bytes) in past {
        let first = l.request_raw("SiteA", bytes.clone()).await;
        let reply = DeleteReply::decode(&first).unwrap();
        let refusal = reply.outcome.clone().unwrap_err();
        assert_eq!(refusal.code, RefusalCode::BadRequest, "{says}");
        assert!(
            refusal.message.contains(says),
            "{says}: {}",
            refusal.message
        );
        // At most 64 bytes of the offending value are quoted.
        assert!(
            refusal.message.len() <= says.len() + 160,
            "{says}: {}",
            refusal.message
        );
        // A resend is answered the same.
        let again = DeleteReply::decode(&l.request_raw("SiteA", bytes.clone()).await).unwrap();
        assert_eq!(again, reply, "{says}");
        let id = reply.request.unwrap();
        let records = record_of(&l, call, id).await;
        assert_eq!(records.len(), 2, "{says}: each answer is on the record");
        for r in &records {
            assert_eq!(r.request_bytes, Some(bytes.len() as u64), "{says}");
            assert_eq!(r.reply, reply, "{says}");
            let mut kept = Vec::new();
            rmpv::encode::write_value(&mut kept, &r.request).unwrap();
            assert!(
                kept.len() < 64 * 1024,
                "{says}: the record keeps {} bytes",
                kept.len()
            );
        }
    }
    // Nothing was appended for any of them.
    let now = l
        .stores
        .events
        .clone()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    assert_eq!(now, last);
    assert!(l.deletions(call).await.is_empty());
    serving.stop().await;
}

//! Given/when/then tests of the request bounds.

use ledger_schemas::{Message, RefusalCode, bounds};
use rmpv::Value;
use uuid::Uuid;

use super::*;

fn text(s: &str) -> Value {
    Value::from(s)
}

/// A valid request's map, with `reasons` and `extensions` as given.
fn request(
    other_dn: Value,
    reasons: Vec<(Value, Value)>,
    extensions: Vec<(Value, Value)>,
) -> Value {
    Value::Map(vec![
        (text("v"), Value::from(1)),
        (
            text("request"),
            Value::Binary(Uuid::from_u128(7).as_bytes().to_vec()),
        ),
        (
            text("call"),
            Value::Binary(Uuid::from_u128(1).as_bytes().to_vec()),
        ),
        (text("this_dn"), text("7001")),
        (text("other_dn"), other_dn),
        (text("reasons"), Value::Map(reasons)),
        (text("extensions"), Value::Map(extensions)),
    ])
}

fn encode(v: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, v).unwrap();
    buf
}

fn entries(n: usize, key_len: usize, value_len: usize) -> Vec<(Value, Value)> {
    (0..n)
        .map(|i| {
            let key = format!("{i:0>key_len$}");
            (text(&key), text(&"v".repeat(value_len)))
        })
        .collect()
}

fn refusal(bytes: &[u8]) -> Inadmissible {
    *admit(bytes).unwrap_err()
}

#[test]
fn a_request_at_every_bound_is_admitted() {
    for raw in [
        request(text("7002"), entries(bounds::MAP_ENTRIES, 4, 4), vec![]),
        request(text("7002"), vec![], entries(bounds::MAP_ENTRIES, 4, 4)),
        request(
            text("7002"),
            entries(1, bounds::KEY_BYTES, bounds::VALUE_BYTES),
            vec![],
        ),
        request(
            text("7002"),
            vec![],
            entries(1, bounds::KEY_BYTES, bounds::VALUE_BYTES),
        ),
    ] {
        let admitted = admit(&encode(&raw)).unwrap();
        assert_eq!(admitted.raw, raw);
    }
}

/// A valid request padded (with one extension value) to exactly `size` bytes as encoded.
fn padded(size: usize) -> Vec<u8> {
    (0..bounds::VALUE_BYTES)
        .map(|pad| {
            let mut ext = entries(15, 4, 500);
            ext.push((text("pad"), text(&"p".repeat(pad))));
            encode(&request(text("7002"), vec![], ext))
        })
        .find(|bytes| bytes.len() == size)
        .unwrap()
}

#[test]
fn a_request_of_exactly_the_largest_size_is_admitted_and_one_byte_more_is_not() {
    assert!(admit(&padded(bounds::REQUEST_BYTES)).is_ok());
    let bytes = padded(bounds::REQUEST_BYTES + 1);
    let refused = refusal(&bytes);
    assert_eq!(refused.refusal.code, RefusalCode::BadRequest);
    assert!(
        refused
            .refusal
            .message
            .contains("8193 bytes as encoded; at most 8192"),
        "{}",
        refused.refusal.message
    );
    assert_eq!(refused.request_bytes, Some(bytes.len() as u64));
    assert_eq!(refused.request, Some(Uuid::from_u128(7)));
    assert_eq!(refused.call, Some(Uuid::from_u128(1)));
}

#[test]
fn a_request_past_each_bound_is_refused_naming_the_field_and_bound() {
    let cases = [
        (
            request(text(&"9".repeat(129)), vec![], vec![]),
            "other_dn is 129 bytes; at most 128",
        ),
        (
            request(text("7002"), entries(33, 4, 4), vec![]),
            "reasons has 33 entries; at most 32",
        ),
        (
            request(text("7002"), vec![], entries(33, 4, 4)),
            "extensions has 33 entries; at most 32",
        ),
        (
            request(text("7002"), entries(1, 65, 4), vec![]),
            "a key of reasons is 65 bytes; at most 64",
        ),
        (
            request(text("7002"), vec![], entries(1, 4, 513)),
            "is 513 bytes; at most 512",
        ),
    ];
    for (raw, says) in cases {
        let bytes = encode(&raw);
        let refused = refusal(&bytes);
        assert_eq!(refused.refusal.code, RefusalCode::BadRequest);
        assert!(
            refused.refusal.message.contains(says),
            "{}",
            refused.refusal.message
        );
        assert_eq!(refused.request_bytes, Some(bytes.len() as u64));
    }
}

#[test]
fn a_huge_binary_other_dn_is_refused_quoting_at_most_64_bytes_and_audited_cut() {
    let raw = request(Value::Binary(vec![0xab; 300_000]), vec![], vec![]);
    let bytes = encode(&raw);
    let refused = refusal(&bytes);
    assert!(
        refused
            .refusal
            .message
            .starts_with("other_dn is 300000 bytes"),
        "{}",
        refused.refusal.message
    );
    assert!(
        refused.refusal.message.len() < 200,
        "{}",
        refused.refusal.message
    );
    let audited = refused.audited.unwrap();
    let other = audited
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("other_dn"))
        .unwrap();
    assert_eq!(other.1, Value::Binary(vec![0xab; bounds::OTHER_DN_BYTES]));
    assert!(encode(&audited).len() < 1024);
}

#[test]
fn a_request_filling_the_servers_payload_limit_is_audited_in_a_few_kib() {
    let big = (0..2000)
        .map(|i| (text(&format!("k{i:0>60}")), text(&"x".repeat(500))))
        .collect();
    let mut raw = request(text("7002"), big, entries(40, 100, 600));
    if let Value::Map(m) = &mut raw {
        for i in 0..100 {
            m.push((text(&format!("junk{i}")), Value::Binary(vec![1; 10_000])));
        }
    }
    let bytes = encode(&raw);
    assert!(bytes.len() > 1_000_000);
    let refused = refusal(&bytes);
    assert_eq!(refused.refusal.code, RefusalCode::BadRequest);
    let audited = encode(&refused.audited.unwrap());
    assert!(audited.len() < 64 * 1024, "{} bytes", audited.len());
}

#[test]
fn malformed_fields_quote_at_most_64_bytes() {
    let raw = request(text("7002"), vec![], vec![]);
    let mut bad = raw.clone();
    if let Value::Map(m) = &mut bad {
        m[3].1 = Value::Binary(vec![0x41; 5000]);
    }
    let refused = refusal(&encode(&bad));
    assert!(
        refused.refusal.message.contains("this_dn"),
        "{}",
        refused.refusal.message
    );
    assert!(
        refused.refusal.message.len() < 200,
        "{}",
        refused.refusal.message
    );
    assert_eq!(
        refused.request_bytes, None,
        "within the bounds: audited as received"
    );
    assert_eq!(refused.audited, Some(bad));
}

#[test]
fn bytes_that_are_not_a_map_are_refused_and_not_audited() {
    let refused = refusal(b"\x93\x01\x02\x03");
    assert_eq!(refused.refusal.code, RefusalCode::BadRequest);
    assert_eq!(refused.audited, None);
    let deep = [0x91u8; 64];
    assert_eq!(refusal(&deep).refusal.code, RefusalCode::BadRequest);
}

#[test]
fn an_admitted_request_decodes_as_the_schema_says() {
    let raw = request(text("7002@SiteB"), vec![], vec![]);
    let bytes = encode(&raw);
    let admitted = admit(&bytes).unwrap();
    assert_eq!(admitted.request, DeleteRequest::decode(&bytes).unwrap());
}

#[test]
fn the_refusal_of_a_long_other_dn_reads_as_in_the_golden_vector() {
    let refused = refusal(&encode(&request(text(&"9".repeat(300)), vec![], vec![])));
    let expected = format!(
        "other_dn is 300 bytes; at most 128 are allowed: \"{}…",
        "9".repeat(63)
    );
    assert_eq!(refused.refusal.message, expected);
}

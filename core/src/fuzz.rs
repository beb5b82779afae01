//! Entry points for coverage-guided fuzzing (`fuzz/`, `./dev fuzz`) and for replaying the kept
//! corpus as ordinary tests: each takes arbitrary bytes and must never panic, hang or allocate
//! without bound. Not part of the API.

use ledger_schemas::{
    AuditRecord, ConfigKey, DeleteReply, DeleteRequest, LctList, Message, OptionChanged,
    OptionName, PartyEvent, Site, SiteOptions,
};

use crate::{Decision, Fold, View, admit, decide};

/// Every decoder of a party event: alone, and on a subject built from the bytes; the fast path
/// checked against the general decoder.
pub fn event(data: &[u8]) {
    let _ = PartyEvent::decode(data);
    if let Some((&n, rest)) = data.split_first() {
        let split = usize::from(n).min(rest.len());
        let subject = String::from_utf8_lossy(&rest[..split]);
        let _ = PartyEvent::decode_on(&subject, &rest[split..]);
        // The fast path reads nothing otherwise than the general decoder.
        PartyEvent::check_fast_path(&subject, &rest[split..]);
    }
}

/// The request decoder and the admission of a request (bounds, cut audit copy).
pub fn request(data: &[u8]) {
    let _ = DeleteRequest::decode(data);
    if let Err(refused) = admit(data)
        && let Some(audited) = refused.audited
    {
        // What the audit keeps of a request past the bounds stays small.
        let mut buf = Vec::new();
        if rmpv::encode::write_value(&mut buf, &audited).is_ok() {
            assert!(buf.len() <= 128 * 1024 || refused.request_bytes.is_none());
        }
    }
}

/// The reply decoder; a decoded reply re-encodes and decodes to itself.
pub fn reply(data: &[u8]) {
    if let Ok(reply) = DeleteReply::decode(data) {
        let again = DeleteReply::decode(&reply.encode());
        assert!(again.is_ok_and(|r| r == reply));
    }
}

/// The LCTParty list decoder; a decoded list re-encodes and decodes to itself.
pub fn list(data: &[u8]) {
    if let Ok(list) = LctList::decode(data) {
        assert!(LctList::decode(&list.encode()).is_ok_and(|l| l == list));
    }
}

/// The audit records' decoders: decisions and option changes.
pub fn audit(data: &[u8]) {
    let _ = AuditRecord::decode(data);
    if let Ok(change) = OptionChanged::decode(data) {
        assert!(OptionChanged::decode(&change.encode()).is_ok_and(|c| c == change));
    }
}

/// Option values and keys as read from `LEDGER_CONFIG`.
pub fn option_value(data: &[u8]) {
    for option in OptionName::ALL {
        let mut options = SiteOptions::default();
        let before = options;
        if options.set(option, data).is_err() {
            assert_eq!(options, before, "a refused value changes nothing");
        }
    }
    let _ = ConfigKey::parse(&String::from_utf8_lossy(data));
}

/// `decide` over decoded input and an arbitrary view: the first byte sets the options, then
/// length-prefixed (one byte) messages: events folded in order, the last one the request.
pub fn decide_over(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut options = SiteOptions {
        call_info: flags & 1 != 0,
        remote_delete: flags & 2 != 0,
        ..SiteOptions::default()
    };
    if flags & 4 != 0 {
        let _ = options.set(OptionName::UseDataFrom, b"current");
    }
    let Ok(site) = Site::new(["SiteA", "SiteB", "SiteC"][usize::from(flags >> 3) % 3]) else {
        return;
    };
    let mut chunks = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        chunks.push(&tail[..len]);
        rest = &tail[len..];
    }
    let Some((request, events)) = chunks.split_last() else {
        return;
    };
    let mut fold: Fold<()> = Fold::new();
    for (seq, bytes) in events.iter().enumerate() {
        if let Ok(event) = PartyEvent::decode(bytes) {
            fold.apply(seq as u64 + 1, &event);
        }
    }
    let Ok(admitted) = admit(request) else {
        return;
    };
    let call = fold.call(admitted.request.call);
    if let Ok(Decision::Delete(deletion)) = decide(&admitted.request, call, site, &options)
        && let Some(call) = call
    {
        // An accepted delete names a present party of the site's view, and a conference.
        let view = View::new(call, site, options.propagates());
        assert!(view.present().any(|p| p.id == deletion.party));
        assert!(view.is_conference());
    }
}

/// Runs the entry point named `target` (a corpus folder's name) on `data`; false for an
/// unknown name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "event" => event(data),
        "request" => request(data),
        "reply" => reply(data),
        "list" => list(data),
        "audit" => audit(data),
        "option_value" => option_value(data),
        "decide" => decide_over(data),
        _ => return false,
    }
    true
}

/// The fuzz targets, by name.
pub const TARGETS: [&str; 7] = [
    "event",
    "request",
    "reply",
    "list",
    "audit",
    "option_value",
    "decide",
];

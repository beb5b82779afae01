//! A call's lists at a moment of its history: every site's view just after a stream sequence, or
//! after the last event whose `ts` is not later than a time.

use ledger_core::{Call, View, evolve};
use ledger_schemas::{LctList, PartyEvent, Site};
use uuid::Uuid;

use crate::fold::party_json;
use crate::read::StoredMessage;

/// Where a call's history is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Just after this stream sequence.
    Seq(u64),
    /// After the last event whose `ts` (microseconds since the epoch) is not later than this.
    Time(u64),
}

/// The lists of every site of `call` (every site that published one of its events up to the
/// cut) at `cut`, each folded under the site's propagation setting now in force
/// (`propagates`). Sites in the order they first published.
pub fn lists_at(
    call: Uuid,
    messages: &[StoredMessage],
    cut: Cut,
    propagates: impl Fn(Site) -> bool,
) -> Vec<LctList> {
    let decoded: Vec<(u64, Option<PartyEvent>)> = messages
        .iter()
        .map(|m| (m.seq, PartyEvent::decode_on(&m.subject, &m.payload).ok()))
        .collect();
    let through = match cut {
        Cut::Seq(seq) => seq,
        Cut::Time(ts) => decoded
            .iter()
            .filter(|(_, e)| e.as_ref().is_some_and(|e| e.ts <= ts))
            .map(|(seq, _)| *seq)
            .max()
            .unwrap_or(0),
    };
    let mut folded = Call::new(call);
    let mut sites: Vec<Site> = Vec::new();
    for (seq, event) in decoded.iter().filter(|(seq, _)| *seq <= through) {
        match event {
            Some(e) => {
                if !sites.contains(&e.site) {
                    sites.push(e.site);
                }
                let _ = evolve(&mut folded, *seq, e);
            }
            None => folded.observe(*seq),
        }
    }
    sites
        .into_iter()
        .map(|site| View::new(&folded, site, propagates(site)).lct_list())
        .collect()
}

/// A site's list at a moment as a line of `ledger replay --at`:
/// `{site, seq, ts, parties, supervisors}`.
pub fn list_json(list: &LctList) -> serde_json::Value {
    let supervisors: Vec<serde_json::Value> = list
        .supervisors
        .iter()
        .map(|s| {
            let mut v = serde_json::json!({
                "party": s.party.to_string(),
                "dn": s.dn.as_str(),
                "location": s.location.as_str(),
                "mode": s.mode.as_str(),
            });
            if let Some(m) = s.monitors {
                v["monitors"] = m.to_string().into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "site": list.site.as_str(),
        "seq": list.seq,
        "ts": list.ts,
        "parties": list.parties.iter().map(party_json).collect::<Vec<_>>(),
        "supervisors": supervisors,
    })
}

//! What a site does with a call's LCTParty list after a change, by the contract's rules.

use ledger_schemas::LctList;

/// A change to make to a call's list at a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// Keep this list (KV `<site>.<call>`) and publish it on `ledger.lct.<site>.<call>`.
    Put(LctList),
    /// No party is left in the view: delete the key and publish this last, empty list.
    End(LctList),
    /// `sip-enable-call-info` is off: the list is no longer kept; delete the key, publish nothing.
    Forget,
}

/// What a site keeps of a list it published or found stored, to compare the next one with:
/// its position, whether it was empty, and a digest of its content. A few bytes instead of the
/// list (a call in progress costs its projector this, not a copy of its list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// The list's `seq`.
    pub seq: u64,
    empty: bool,
    digest: u64,
}

impl Shown {
    /// What is kept of `list`.
    pub fn of(list: &LctList) -> Self {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same list always gives the same digest in this process,
        // which is all a comparison needs (the digest is never stored or sent).
        let mut hasher = std::hash::DefaultHasher::new();
        list.hash(&mut hasher);
        Self {
            seq: list.seq,
            empty: list.is_empty(),
            digest: hasher.finish(),
        }
    }

    /// Whether the list had no party and no supervisor.
    pub fn is_empty(&self) -> bool {
        self.empty
    }
}

/// The change that takes a site from the list it last published (`published`) to the view's
/// list now (`now`), when the site keeps lists (`keep`, its `sip-enable-call-info`) or not.
///
/// - Keeping lists: a list that differs from the published one is put; a view that empties is
///   ended once, if it had been shown; nothing otherwise.
/// - Not keeping lists: a list that was shown is forgotten; nothing otherwise.
pub fn list_change(published: Option<Shown>, now: LctList, keep: bool) -> Option<ListChange> {
    let shown = published.is_some_and(|p| !p.is_empty());
    if !keep {
        return shown.then_some(ListChange::Forget);
    }
    if now.is_empty() {
        return shown.then_some(ListChange::End(now));
    }
    (published != Some(Shown::of(&now))).then_some(ListChange::Put(now))
}

#[cfg(test)]
mod tests {
    use ledger_schemas::{Dn, LctParty, Role, Site};
    use uuid::Uuid;

    use super::*;

    fn list(seq: u64, parties: usize) -> LctList {
        let site = Site::new("SiteA").unwrap();
        LctList {
            call: Uuid::from_u128(1),
            site,
            seq,
            ts: seq,
            parties: (0..parties)
                .map(|i| LctParty {
                    party: Uuid::from_u128(10 + i as u128),
                    dn: Dn::new("7001").unwrap(),
                    location: site,
                    role: Role::Agent,
                })
                .collect(),
            supervisors: Vec::new(),
        }
    }

    #[test]
    fn a_first_list_is_put() {
        assert_eq!(
            list_change(None, list(1, 1), true),
            Some(ListChange::Put(list(1, 1)))
        );
    }

    #[test]
    fn an_unchanged_list_is_not_put_again() {
        assert_eq!(
            list_change(Some(Shown::of(&list(1, 1))), list(1, 1), true),
            None
        );
    }

    #[test]
    fn a_newer_list_is_put() {
        let now = list(2, 2);
        assert_eq!(
            list_change(Some(Shown::of(&list(1, 1))), now.clone(), true),
            Some(ListChange::Put(now))
        );
    }

    #[test]
    fn a_view_that_empties_ends_once() {
        let empty = list(3, 0);
        assert_eq!(
            list_change(Some(Shown::of(&list(2, 2))), empty.clone(), true),
            Some(ListChange::End(empty.clone()))
        );
        assert_eq!(
            list_change(Some(Shown::of(&empty)), list(4, 0), true),
            None,
            "already ended"
        );
    }

    #[test]
    fn a_view_that_never_had_parties_publishes_nothing() {
        assert_eq!(list_change(None, list(3, 0), true), None);
    }

    #[test]
    fn call_info_off_forgets_a_shown_list_and_nothing_else() {
        assert_eq!(
            list_change(Some(Shown::of(&list(2, 2))), list(2, 2), false),
            Some(ListChange::Forget)
        );
        assert_eq!(list_change(None, list(2, 2), false), None);
        assert_eq!(
            list_change(Some(Shown::of(&list(3, 0))), list(3, 0), false),
            None
        );
    }
}

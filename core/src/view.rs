//! A site's view of a call, and its LCTParty list.

use ledger_schemas::{LctList, LctParty, LctSupervisor, Site};

use crate::call::{Call, Party, Stamp, applies};

/// A site's view of one call: the call's fold seen through the site's propagation setting.
///
/// The view applies every event the site published, every event about a party located at the
/// site, and, with propagation on, every other event. Equivalently, a party is in the view when
/// it is located at the site or propagation is on, which is what [`View::shows`] checks; the
/// property tests prove the two readings agree.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    call: &'a Call,
    site: Site,
    propagates: bool,
}

impl<'a> View<'a> {
    /// `site`'s view of `call`, with Party Events propagation on or off.
    pub fn new(call: &'a Call, site: Site, propagates: bool) -> Self {
        Self {
            call,
            site,
            propagates,
        }
    }

    /// The call behind the view.
    pub fn call(&self) -> &'a Call {
        self.call
    }

    /// The viewing site.
    pub fn site(&self) -> Site {
        self.site
    }

    /// Whether the view applies the event stamped `stamp` about a party located at `location`.
    fn applies(&self, stamp: Stamp, location: Site) -> bool {
        applies(stamp.origin, location, self.site, self.propagates)
    }

    /// Whether `party` is present in this view.
    pub fn shows(&self, party: &Party) -> bool {
        // A join always comes from the party's own location, so the view applied the join iff
        // the party is local or propagation is on; the departure of such a party is always
        // applied too (it is about a party the view holds).
        party.is_present() && self.applies(party.joined_stamp(), party.location)
    }

    /// Present parties and supervisors, in join order.
    pub fn present(&self) -> impl Iterator<Item = &'a Party> + '_ {
        self.call.parties().iter().filter(|p| self.shows(p))
    }

    /// Present parties other than supervisors (LCTParty<n>), in join order.
    pub fn parties(&self) -> impl Iterator<Item = &'a Party> + '_ {
        self.present().filter(|p| !p.is_supervisor())
    }

    /// Whether no party is present in this view.
    pub fn is_empty(&self) -> bool {
        self.present().next().is_none()
    }

    /// Whether the call is a conference in this view: at least three non-supervisor parties.
    pub fn is_conference(&self) -> bool {
        self.parties().nth(2).is_some()
    }

    /// The last event applied to this call in this view: the LCT list's `seq` and `ts`.
    pub fn last_applied(&self) -> Option<Stamp> {
        self.call
            .parties()
            .iter()
            .flat_map(|p| {
                let joined = p.joined_stamp();
                let join = self.applies(joined, p.location).then_some(joined);
                let gone = p
                    .gone
                    .map(|d| d.stamp())
                    .filter(|s| self.applies(*s, p.location));
                join.into_iter().chain(gone)
            })
            .max_by_key(|s| s.seq)
    }

    /// The view as an LCTParty list.
    pub fn lct_list(&self) -> LctList {
        let last = self.last_applied();
        let mut list = LctList {
            call: self.call.id(),
            site: self.site,
            seq: last.map_or(0, |s| s.seq),
            ts: last.map_or(0, |s| s.ts),
            parties: Vec::new(),
            supervisors: Vec::new(),
        };
        for p in self.present() {
            if p.is_supervisor() {
                list.supervisors.push(LctSupervisor {
                    party: p.id,
                    dn: p.dn,
                    location: p.location,
                    mode: p.mode,
                    monitors: p.monitors,
                });
            } else {
                list.parties.push(lct_party(p));
            }
        }
        list
    }

    /// The LCTParty entries of the present non-supervisor parties.
    pub fn lct_parties(&self) -> Vec<LctParty> {
        self.parties().map(lct_party).collect()
    }
}

/// The global view's LCTParty entries: every present non-supervisor party of `call`, wherever
/// it is located, in join order. It is what every site sees with propagation on.
pub fn global_lct_parties(call: &Call) -> Vec<LctParty> {
    call.parties()
        .iter()
        .filter(|p| p.is_present() && !p.is_supervisor())
        .map(lct_party)
        .collect()
}

/// A party as an LCTParty entry (supervisors keep their role, as in ambiguity candidates).
pub fn lct_party(p: &Party) -> LctParty {
    LctParty {
        party: p.id,
        dn: p.dn,
        location: p.location,
        role: p.role,
    }
}

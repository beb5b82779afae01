//! Synthetic traffic for the benchmarks: calls interleaved as in a real contact centre.

use ledger_schemas::{Dn, EventBody, Joined, MonitorMode, PartyEvent, Role, Site};
use uuid::Uuid;

/// Synthetic traffic: calls of a customer and three agents at two sites, joining and then
/// leaving, with `concurrent` calls in progress at a time. Each next event belongs to a call
/// drawn at random (xorshift, fixed seed: the same stream every run), so calls start and end at
/// different times and their events interleave as in a real contact centre.
pub(crate) struct Traffic {
    concurrent: usize,
    rng: u64,
    site_a: Site,
    site_b: Site,
    active: Vec<(Uuid, [Uuid; 4], u8)>,
    ts: u64,
}

const STEPS: u8 = 8;

impl Traffic {
    pub(crate) fn new(concurrent: usize) -> Result<Self, ledger_schemas::NameError> {
        Ok(Self {
            concurrent: concurrent.max(1),
            rng: 0x9e37_79b9_7f4a_7c15,
            site_a: Site::new("BenchA")?,
            site_b: Site::new("BenchB")?,
            active: Vec::new(),
            ts: 1_764_115_200_000_000,
        })
    }

    pub(crate) fn next_event(&mut self) -> Result<PartyEvent, ledger_schemas::NameError> {
        while self.active.len() < self.concurrent {
            let parties = [
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
                Uuid::now_v7(),
            ];
            self.active.push((Uuid::now_v7(), parties, 0));
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = (self.rng % self.active.len() as u64) as usize;
        let (call, parties, step) = self.active[slot];
        let i = usize::from(step % 4);
        let site = if i == 2 { self.site_b } else { self.site_a };
        let body = if step < 4 {
            let (dn, role) = match i {
                0 => ("+14155550100", Role::Customer),
                1 => ("7001", Role::Agent),
                2 => ("7001", Role::Agent),
                _ => ("7004", Role::Agent),
            };
            EventBody::Joined(Joined {
                dn: Dn::new(dn)?,
                role,
                mode: MonitorMode::Normal,
                monitors: None,
            })
        } else {
            EventBody::Left { reason: None }
        };
        self.ts += 1;
        let event = PartyEvent {
            id: Uuid::now_v7(),
            call,
            site,
            ts: self.ts,
            party: parties[i],
            body,
        };
        if step + 1 == STEPS {
            self.active.swap_remove(slot);
        } else {
            self.active[slot].2 = step + 1;
        }
        Ok(event)
    }
}

//! The simulator's script: a discrete-event simulation on a virtual clock, seeded, so that the
//! same seed and settings give the same sequence of steps (call number, kind, origin site, DN,
//! role), whatever the machine's speed. Only the ids and times of the events differ.
//!
//! Calls arrive at a steady rate. Each has two to six parties across the sites: a customer and an
//! agent at the call's site, sometimes a transfer to another agent, often a conference with agents
//! at other sites (some with the same DN as an agent elsewhere), sometimes a supervisor monitoring
//! an agent in one of the four modes (leaving early, or not), sometimes a TDeleteFromConference
//! (by party id, `dn@site`, a bare DN, or aimed at the supervisor), and hang-ups at the end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ledger_schemas::{MonitorMode, Role, Site};

/// splitmix64: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `percent` in 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len() as u64) as usize])
    }
}

/// How a delete request names its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Aim {
    /// By the party id of the call's `party`th party.
    Party(usize),
    /// By `dn@site` of the call's `party`th party.
    DnAt(usize),
    /// By the bare DN of the call's `party`th party (ambiguous when another party has it).
    Dn(usize),
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// The call's `party`th party joins at `site`.
    Join {
        party: usize,
        site: Site,
        dn: String,
        role: Role,
        mode: MonitorMode,
        /// For a supervisor: the party it monitors.
        monitors: Option<usize>,
    },
    /// The call's `party`th party leaves (it was not deleted meanwhile).
    Leave { party: usize, reason: &'static str },
    /// The call's `by`th party (located at its site) asks to delete a party.
    Delete { by: usize, aim: Aim },
}

/// One step of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Virtual time, in microseconds since the start.
    pub(crate) at_us: u64,
    /// The call's number, from 0.
    pub(crate) call: u64,
    /// What happens.
    pub(crate) action: Action,
}

/// The parties of a call as the script planned them: their site, DN and role.
#[derive(Debug, Clone)]
pub(crate) struct Party {
    pub(crate) site: Site,
    pub(crate) dn: String,
    pub(crate) role: Role,
}

struct Plan {
    parties: Vec<Party>,
    steps: Vec<Action>,
    next: usize,
}

/// The script: steps in virtual-time order.
pub(crate) struct Script {
    rng: Rng,
    sites: Vec<Site>,
    calls: u64,
    started: u64,
    interval_us: u64,
    gap_us: u64,
    plans: std::collections::HashMap<u64, Plan>,
    due: BinaryHeap<Reverse<(u64, u64)>>,
}

impl Script {
    /// `calls` calls arriving `rate` a second across `sites`, with a mean gap of `gap_us`
    /// microseconds between two steps of a call, from `seed`.
    pub(crate) fn new(seed: u64, sites: Vec<Site>, calls: u64, rate: f64, gap_us: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            sites,
            calls,
            started: 0,
            interval_us: (1_000_000.0 / rate.max(0.001)) as u64,
            gap_us: gap_us.max(4),
            plans: std::collections::HashMap::new(),
            due: BinaryHeap::new(),
        }
    }

    /// The parties planned for call `call`, while it runs.
    pub(crate) fn parties(&self, call: u64) -> Option<&[Party]> {
        self.plans.get(&call).map(|p| p.parties.as_slice())
    }

    /// Calls started so far.
    pub(crate) fn started(&self) -> u64 {
        self.started
    }

    fn plan(&mut self) -> Plan {
        let sites = self.sites.clone();
        let rng = &mut self.rng;
        let home = rng.pick(&sites).unwrap_or_else(|| sites[0]);
        let agent_dn = |rng: &mut Rng| format!("{}", 7001 + rng.below(20));
        let mut parties = vec![
            Party {
                site: home,
                dn: format!("+1415555{:04}", rng.below(10_000)),
                role: Role::Customer,
            },
            Party {
                site: home,
                dn: agent_dn(rng),
                role: Role::Agent,
            },
        ];
        let mut steps = vec![join(&parties, 0, None, rng), join(&parties, 1, None, rng)];
        let mut present = vec![0, 1];
        // A transfer: the first agent hands over to another (perhaps at another site).
        if rng.chance(20) {
            let site = rng.pick(&sites).unwrap_or(home);
            parties.push(Party {
                site,
                dn: agent_dn(rng),
                role: Role::Agent,
            });
            let n = parties.len() - 1;
            steps.push(join(&parties, n, None, rng));
            steps.push(Action::Leave {
                party: 1,
                reason: "transfer",
            });
            present.retain(|p| *p != 1);
            present.push(n);
        }
        // A conference: one to three more parties, agents at other sites, some with a DN that
        // an agent already has (the same DN at another site), sometimes an external party.
        if rng.chance(60) {
            for _ in 0..1 + rng.below(3) {
                let site = rng.pick(&sites).unwrap_or(home);
                let (dn, role) = if rng.chance(15) {
                    (format!("+1212555{:04}", rng.below(10_000)), Role::External)
                } else if rng.chance(40) {
                    (
                        parties[*present.last().unwrap_or(&1)].dn.clone(),
                        Role::Agent,
                    )
                } else {
                    (agent_dn(rng), Role::Agent)
                };
                parties.push(Party { site, dn, role });
                let n = parties.len() - 1;
                steps.push(join(&parties, n, None, rng));
                present.push(n);
            }
        }
        // A supervisor monitoring one of the agents, leaving early half the time.
        let mut supervisor = None;
        if rng.chance(30) {
            let agents: Vec<usize> = present
                .iter()
                .copied()
                .filter(|p| parties[*p].role == Role::Agent)
                .collect();
            if let Some(watched) = rng.pick(&agents) {
                let site = if rng.chance(70) {
                    parties[watched].site
                } else {
                    rng.pick(&sites).unwrap_or(home)
                };
                parties.push(Party {
                    site,
                    dn: format!("{}", 7100 + rng.below(5)),
                    role: Role::Supervisor,
                });
                let n = parties.len() - 1;
                steps.push(join(&parties, n, Some(watched), rng));
                supervisor = Some(n);
                if rng.chance(50) {
                    steps.push(Action::Leave {
                        party: n,
                        reason: "hangup",
                    });
                    supervisor = None;
                }
            }
        }
        // A TDeleteFromConference in a conference, from an agent.
        let others: Vec<usize> = present
            .iter()
            .copied()
            .filter(|p| parties[*p].role != Role::Supervisor)
            .collect();
        if others.len() >= 3 && rng.chance(50) {
            let agents: Vec<usize> = others
                .iter()
                .copied()
                .filter(|p| parties[*p].role == Role::Agent)
                .collect();
            if let Some(by) = rng.pick(&agents) {
                let targets: Vec<usize> = others
                    .iter()
                    .copied()
                    .filter(|p| *p != by && *p != 0)
                    .collect();
                let aim = match (rng.below(10), supervisor, rng.pick(&targets)) {
                    (0, Some(s), _) => Some(Aim::Party(s)),
                    (1 | 2, _, Some(t)) => Some(Aim::Dn(t)),
                    (3, _, Some(t)) => Some(Aim::DnAt(t)),
                    (_, _, Some(t)) => Some(Aim::Party(t)),
                    _ => None,
                };
                if let Some(aim) = aim {
                    steps.push(Action::Delete { by, aim });
                }
            }
        }
        // Hang-ups: everyone still there leaves, in some order.
        let mut leaving: Vec<usize> = present;
        leaving.extend(supervisor);
        while !leaving.is_empty() {
            let i = rng.below(leaving.len() as u64) as usize;
            steps.push(Action::Leave {
                party: leaving.swap_remove(i),
                reason: "hangup",
            });
        }
        Plan {
            parties,
            steps,
            next: 0,
        }
    }

    /// A gap between two steps of a call: a quarter to one and three quarters of the mean.
    fn gap(&mut self) -> u64 {
        self.gap_us / 4 + self.rng.below(self.gap_us * 3 / 2)
    }
}

fn join(parties: &[Party], n: usize, monitors: Option<usize>, rng: &mut Rng) -> Action {
    let p = &parties[n];
    let mode = if p.role == Role::Supervisor {
        [
            MonitorMode::Mute,
            MonitorMode::Coach,
            MonitorMode::Connect,
            MonitorMode::Normal,
        ][rng.below(4) as usize]
    } else {
        MonitorMode::Normal
    };
    Action::Join {
        party: n,
        site: p.site,
        dn: p.dn.clone(),
        role: p.role,
        mode,
        monitors,
    }
}

impl Iterator for Script {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let arrival = (self.started < self.calls).then(|| self.started * self.interval_us);
        let due = self.due.peek().map(|Reverse((at, call))| (*at, *call));
        let (at, call) = match (arrival, due) {
            (Some(a), Some((d, _))) if a <= d => {
                let call = self.started;
                self.started += 1;
                let plan = self.plan();
                self.plans.insert(call, plan);
                (a, call)
            }
            (_, Some(d)) => {
                self.due.pop();
                d
            }
            (Some(a), None) => {
                let call = self.started;
                self.started += 1;
                let plan = self.plan();
                self.plans.insert(call, plan);
                (a, call)
            }
            (None, None) => return None,
        };
        let gap = self.gap();
        let plan = self.plans.get_mut(&call)?;
        let action = plan.steps.get(plan.next)?.clone();
        plan.next += 1;
        if plan.next < plan.steps.len() {
            self.due.push(Reverse((at + gap, call)));
        }
        Some(Step {
            at_us: at,
            call,
            action,
        })
    }
}

impl Script {
    /// Forgets a call once its last step was played.
    pub(crate) fn forget_if_done(&mut self, call: u64) {
        if self
            .plans
            .get(&call)
            .is_some_and(|p| p.next >= p.steps.len())
        {
            self.plans.remove(&call);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites() -> Vec<Site> {
        ["SiteA", "SiteB", "SiteC"]
            .iter()
            .map(|s| Site::new(s).unwrap())
            .collect()
    }

    fn summary(seed: u64) -> Vec<(u64, String, String, String, String)> {
        let mut script = Script::new(seed, sites(), 50, 10.0, 2_000_000);
        let mut out = Vec::new();
        while let Some(step) = script.next() {
            let parties = script.parties(step.call).unwrap().to_vec();
            let line = match &step.action {
                Action::Join { site, dn, role, .. } => (
                    "join",
                    site.to_string(),
                    dn.clone(),
                    role.as_str().to_owned(),
                ),
                Action::Leave { party, .. } => (
                    "leave",
                    parties[*party].site.to_string(),
                    parties[*party].dn.clone(),
                    parties[*party].role.as_str().to_owned(),
                ),
                Action::Delete { by, .. } => (
                    "delete",
                    parties[*by].site.to_string(),
                    parties[*by].dn.clone(),
                    "agent".to_owned(),
                ),
            };
            out.push((step.call, line.0.to_owned(), line.1, line.2, line.3));
            script.forget_if_done(step.call);
        }
        out
    }

    #[test]
    fn the_same_seed_plays_the_same_script_and_another_does_not() {
        let a = summary(7);
        assert_eq!(a, summary(7));
        assert_ne!(a, summary(8));
        let calls: std::collections::HashSet<u64> = a.iter().map(|s| s.0).collect();
        assert_eq!(calls.len(), 50);
    }

    #[test]
    fn every_call_joins_before_it_leaves_and_ends_with_nobody_present() {
        let mut script = Script::new(3, sites(), 200, 50.0, 2_000_000);
        let mut present: std::collections::HashMap<(u64, usize), bool> = Default::default();
        let mut last_at = 0;
        while let Some(step) = script.next() {
            assert!(step.at_us >= last_at, "virtual time only moves forward");
            last_at = step.at_us;
            match step.action {
                Action::Join { party, .. } => {
                    assert!(present.insert((step.call, party), true).is_none())
                }
                Action::Leave { party, .. } => {
                    assert_eq!(present.remove(&(step.call, party)), Some(true))
                }
                Action::Delete { by, .. } => assert!(present.contains_key(&(step.call, by))),
            }
            script.forget_if_done(step.call);
        }
        assert!(present.is_empty(), "{} parties never left", present.len());
        assert_eq!(script.started(), 200);
    }
}

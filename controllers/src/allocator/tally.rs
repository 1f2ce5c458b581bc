//! The running account of one round: what each framework and role holds
//! (placements and open offers), what they still wait for, and the order in
//! which they are served — weighted DRF among roles and within each role,
//! or strict priority; roles below their guarantee always first.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use berth_api::ResourceVec;
use berth_api::cluster::AllocationPolicy;
use berth_api::framework::Mode;

use super::input::{Input, RoleQuota};

/// `v`'s largest fraction of any resource of `total`.
pub fn dominant_share(v: &ResourceVec, total: &ResourceVec) -> f64 {
    let frac = |a: u64, t: u64| if t == 0 { 0.0 } else { a as f64 / t as f64 };
    frac(v.cpu_millis, total.cpu_millis).max(frac(v.memory_bytes, total.memory_bytes))
}

/// Each entry the smaller of the two.
pub fn min_each(a: &ResourceVec, b: &ResourceVec) -> ResourceVec {
    ResourceVec::new(a.cpu_millis.min(b.cpu_millis), a.memory_bytes.min(b.memory_bytes))
}

pub struct FwState {
    pub role: usize,
    /// Placements and open offers.
    pub consumed: ResourceVec,
    /// Demand not yet covered by open offers.
    pub remaining: ResourceVec,
    /// The offer unit: its smallest task (zero when it wants nothing).
    pub task: ResourceVec,
    /// In `Offers` mode and with demand.
    pub wants: bool,
}

impl FwState {
    /// True when it wants at least one more task's worth.
    pub fn hungry(&self) -> bool {
        self.wants && self.task != ResourceVec::ZERO && self.task.fits_in(&self.remaining)
    }
}

pub struct RoleState {
    pub name: String,
    pub quota: RoleQuota,
    pub consumed: ResourceVec,
    /// The summed uncovered demand of its frameworks.
    pub remaining: ResourceVec,
}

impl RoleState {
    pub fn below_guarantee(&self) -> bool {
        self.quota.guarantee != ResourceVec::ZERO && !self.quota.guarantee.fits_in(&self.consumed)
    }

    /// Guarantee not yet consumed that its demand would use.
    pub fn unsatisfied(&self) -> ResourceVec {
        min_each(&self.quota.guarantee.saturating_sub(&self.consumed), &self.remaining)
    }

    /// True when `more` keeps the role within its limit.
    pub fn within_limit(&self, more: &ResourceVec) -> bool {
        self.quota.limit.is_none_or(|l| (self.consumed + *more).fits_in(&l))
    }
}

pub struct Tally {
    pub policy: AllocationPolicy,
    /// The cluster's schedulable allocatable: the denominator of shares.
    pub total: ResourceVec,
    pub fws: Vec<FwState>,
    pub roles: Vec<RoleState>,
}

impl Tally {
    /// The account at the start of a round; `open` are the offers that stay open.
    pub fn new(input: &Input, total: ResourceVec, open: &[(usize, ResourceVec)]) -> Tally {
        let mut role_index: BTreeMap<&str, usize> = BTreeMap::new();
        let mut roles: Vec<RoleState> = Vec::new();
        let mut fws = Vec::with_capacity(input.frameworks.len());
        for f in &input.frameworks {
            let role = *role_index.entry(f.role.as_str()).or_insert_with(|| {
                roles.push(RoleState {
                    name: f.role.clone(),
                    quota: input.policy.role(&f.role),
                    consumed: ResourceVec::ZERO,
                    remaining: ResourceVec::ZERO,
                });
                roles.len() - 1
            });
            let demand = f.demand.filter(|_| f.mode == Mode::Offers);
            fws.push(FwState {
                role,
                consumed: f.allocated,
                remaining: demand.map(|d| d.total).unwrap_or_default(),
                task: demand.map(|d| d.task).unwrap_or_default(),
                wants: demand.is_some(),
            });
        }
        for (i, r) in open {
            fws[*i].consumed += *r;
            fws[*i].remaining = fws[*i].remaining.saturating_sub(r);
        }
        for f in &fws {
            roles[f.role].consumed += f.consumed;
            roles[f.role].remaining += f.remaining;
        }
        Tally { policy: input.policy.kind, total, fws, roles }
    }

    /// Records `amount` offered to framework `i`.
    pub fn offer(&mut self, i: usize, amount: ResourceVec) {
        let f = &mut self.fws[i];
        f.consumed += amount;
        f.remaining = f.remaining.saturating_sub(&amount);
        let r = &mut self.roles[f.role];
        r.consumed += amount;
        r.remaining = r.remaining.saturating_sub(&amount);
    }

    pub fn fw_share(&self, i: usize, weight: f64) -> f64 {
        dominant_share(&self.fws[i].consumed, &self.total) / weight
    }

    fn role_share(&self, r: usize) -> f64 {
        dominant_share(&self.roles[r].consumed, &self.total) / self.roles[r].quota.weight
    }

    /// The guarantee other roles still need, which fair sharing must leave free.
    pub fn headroom_for_others(&self, role: usize) -> ResourceVec {
        self.roles.iter().enumerate().filter(|(r, _)| *r != role).map(|(_, s)| s.unsatisfied()).sum()
    }

    /// Orders framework `a` before `b` (weights and priorities from `input`).
    pub fn cmp(&self, input: &Input, a: usize, b: usize) -> Ordering {
        let (fa, fb) = (&input.frameworks[a], &input.frameworks[b]);
        let (ra, rb) = (self.fws[a].role, self.fws[b].role);
        let stage = |r: usize| !self.roles[r].below_guarantee();
        let by_share =
            || self.fw_share(a, fa.weight).total_cmp(&self.fw_share(b, fb.weight)).then_with(|| fa.id.cmp(&fb.id));
        stage(ra).cmp(&stage(rb)).then_with(|| match self.policy {
            AllocationPolicy::Drf => self
                .role_share(ra)
                .total_cmp(&self.role_share(rb))
                .then_with(|| self.roles[ra].name.cmp(&self.roles[rb].name))
                .then_with(by_share),
            AllocationPolicy::StrictPriority => fb.priority.cmp(&fa.priority).then_with(by_share),
        })
    }
}

//! Why a framework got no new offer in a round: the sentence its `Offered`
//! condition shows, so `kubectl describe framework` answers "why not?".

use berth_api::ResourceVec;

use super::input::{Idle, IdleReason};
use super::round::Round;

impl Round<'_> {
    /// The reason framework `f` got nothing this round.
    pub(super) fn why(&self, f: usize) -> Idle {
        let fw = &self.tally.fws[f];
        let idle = |reason, message: String| Idle { reason, message };
        if let Some(why) = &self.input.frameworks[f].disconnected {
            return idle(IdleReason::Disconnected, why.clone());
        }
        if !fw.wants || fw.task == ResourceVec::ZERO {
            return idle(IdleReason::Suppressed, "no pending tasks: offers are suppressed".into());
        }
        if !fw.hungry() {
            let open = self.open.iter().filter(|(g, _)| *g == f).count();
            return idle(IdleReason::OffersOutstanding, format!("its {open} open offer(s) cover its pending tasks"));
        }
        let role = &self.tally.roles[fw.role];
        if !self.within_limit(f) {
            let limit = role.quota.limit.unwrap_or_default();
            return idle(
                IdleReason::QuotaLimit,
                format!(
                    "role {:?} holds {} of its limit {}; a task needs {}",
                    role.name, role.consumed, limit, fw.task
                ),
            );
        }
        if let Some((rf, a)) = self.reservation
            && rf == f
        {
            let agent = &self.input.agents[a].name;
            return idle(IdleReason::Reserved, format!("agent {agent} is kept for it until {} is free there", fw.task));
        }
        let agents = 0..self.input.agents.len();
        let schedulable = agents.clone().filter(|&a| self.input.agents[a].schedulable).count();
        let can_use = agents.clone().filter(|&a| self.input.agents[a].schedulable && !self.barred.contains(&(f, a)));
        if schedulable > 0 && can_use.count() == 0 {
            return idle(
                IdleReason::NoUsableAgent,
                format!("its pending tasks' constraints rule out all {schedulable} schedulable agent(s)"),
            );
        }
        let with_room: Vec<usize> = agents
            .filter(|&a| {
                self.input.agents[a].schedulable && !self.open.contains(&(f, a)) && fw.task.fits_in(&self.free[a])
            })
            .collect();
        if !with_room.is_empty() && with_room.iter().all(|&a| self.barred.contains(&(f, a))) {
            return idle(
                IdleReason::NoUsableAgent,
                format!(
                    "its pending tasks' constraints rule out all {} agent(s) with room for {}",
                    with_room.len(),
                    fw.task
                ),
            );
        }
        let with_room: Vec<usize> = with_room.into_iter().filter(|&a| !self.barred.contains(&(f, a))).collect();
        if with_room.is_empty() {
            return idle(
                IdleReason::NoCapacity,
                format!("no agent has {} free; capacity went to frameworks first in order", fw.task),
            );
        }
        if with_room.iter().all(|&a| self.declined.contains(&(f, a))) {
            let until = self
                .input
                .filters
                .iter()
                .filter(|d| d.until > self.now && d.framework == self.input.frameworks[f].id)
                .map(|d| d.until)
                .min();
            let until = until.map(berth_api::format_time).unwrap_or_default();
            return idle(
                IdleReason::Declined,
                format!("it declined all {} agent(s) with room; the first decline ends at {until}", with_room.len()),
            );
        }
        if !self.leaves_headroom(f) {
            return idle(
                IdleReason::GuaranteeHeadroom,
                format!(
                    "the free capacity is kept for roles below their guarantee ({})",
                    self.tally.headroom_for_others(fw.role)
                ),
            );
        }
        idle(IdleReason::NoCapacity, "the agents with room are kept for a framework that waits longer".into())
    }
}

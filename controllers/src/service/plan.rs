//! The pure planner of one service task group: its attempts and the time
//! in, what to start, stop and prune out. No I/O and no clock.
//!
//! Slots `0..instances` are kept running; a slot whose latest attempt
//! ended gets its next one, after a failure only once its restart backoff
//! is over. When the template changes, each slot gets an attempt of the new
//! template beside its old one (surge) and the old one is stopped once the
//! new one is ready; or, within `maxUnavailable`, the old one is stopped
//! first. Live attempts (stopping ones too) never exceed
//! `instances + maxSurge`; the planner never stops a serving instance while
//! fewer than `instances - maxUnavailable` slots would be left serving.

use std::collections::BTreeMap;

use berth_api::retry::RetryPolicy;
use berth_api::rollout::{REASON_SCALED_DOWN, REASON_SUPERSEDED};
use jiff::{SignedDuration, Timestamp};

use super::attempt::{Attempt, consecutive_failures};

/// Terminal attempts kept per slot; older ones are deleted.
pub const KEPT_TERMINAL_ATTEMPTS: usize = 3;

/// One group's desired state and what exists of it.
#[derive(Clone, Debug)]
pub struct GroupInput<'a> {
    pub instances: u32,
    /// The hash of the group's container now.
    pub hash: &'a str,
    pub max_surge: u32,
    pub max_unavailable: u32,
    pub retry: &'a RetryPolicy,
    /// The Job's `spec.paused`.
    pub paused: bool,
    /// The group's placements, of every slot and attempt.
    pub attempts: &'a [Attempt],
}

/// Which container a new attempt runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// The group's container now.
    Current,
    /// The container of this placement (an older template, while paused).
    Of(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub slot: u32,
    pub attempt: u32,
    pub template: Template,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    pub name: String,
    pub reason: &'static str,
}

/// A slot waiting out its restart backoff.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    pub slot: u32,
    pub until: Timestamp,
    pub failures: u32,
    /// How its last attempt ended.
    pub why: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupPlan {
    pub starts: Vec<Start>,
    pub kills: Vec<Kill>,
    /// Terminal placements to delete.
    pub prune: Vec<String>,
    /// Placements whose failures-before annotation is to be set first.
    pub annotate: Vec<(String, u32)>,
    pub backoffs: Vec<Backoff>,
}

/// An outdated slot: its only kept attempts run an older template.
struct Outdated<'a> {
    slot: u32,
    old: Vec<&'a Attempt>,
    waiting: bool,
    next_attempt: u32,
}

pub fn plan(input: &GroupInput<'_>, now: Timestamp) -> GroupPlan {
    let n = input.instances;
    let mut out = GroupPlan::default();
    let mut by_slot: BTreeMap<u32, Vec<&Attempt>> = BTreeMap::new();
    for a in input.attempts {
        by_slot.entry(a.slot).or_default().push(a);
    }
    let cap = n.saturating_add(input.max_surge);
    let mut live = input.attempts.iter().filter(|a| a.is_live()).count() as u32;
    let serving = |slot: u32| by_slot.get(&slot).is_some_and(|v| v.iter().any(|a| a.is_available()));
    let mut available = (0..n).filter(|s| serving(*s)).count() as u32;
    let floor = n.saturating_sub(input.max_unavailable);
    let any_old = input.attempts.iter().find(|a| a.is_kept() && a.hash != input.hash).map(|a| a.name.clone());

    let mut replacements = Vec::new();
    let mut outdated = Vec::new();
    for (&slot, atts) in &by_slot {
        if slot >= n {
            for a in atts.iter().filter(|a| a.is_kept()) {
                out.kills.push(Kill { name: a.name.clone(), reason: REASON_SCALED_DOWN });
            }
            continue;
        }
        let latest = atts.iter().max_by_key(|a| a.attempt).expect("a slot has attempts");
        let waiting = backoff(atts, latest, input.retry, now);
        if let Some(b) = &waiting {
            out.backoffs.push(b.clone());
        }
        let kept: Vec<&Attempt> = atts.iter().copied().filter(|a| a.is_kept()).collect();
        let (new, old): (Vec<&Attempt>, Vec<&Attempt>) = kept.iter().partition(|a| a.hash == input.hash);
        let next_attempt = latest.attempt + 1;
        match (new.is_empty(), old.is_empty()) {
            (true, true) if waiting.is_none() => {
                let template = match input.paused && latest.hash != input.hash {
                    true => Template::Of(latest.name.clone()),
                    false => Template::Current,
                };
                replacements.push(Start { slot, attempt: next_attempt, template });
            }
            (true, true) => {}
            (false, false) if !input.paused && new.iter().any(|a| a.is_available()) => {
                for a in old {
                    out.kills.push(Kill { name: a.name.clone(), reason: REASON_SUPERSEDED });
                }
            }
            (true, false) if !input.paused => {
                outdated.push(Outdated { slot, old, waiting: waiting.is_some(), next_attempt })
            }
            _ => {}
        }
        prune(atts, &mut out);
    }
    for slot in (0..n).filter(|s| !by_slot.contains_key(s)) {
        let template = match (input.paused, &any_old) {
            (true, Some(name)) => Template::Of(name.clone()),
            _ => Template::Current,
        };
        replacements.push(Start { slot, attempt: 0, template });
    }
    replacements.sort_by_key(|s| s.slot);

    // Empty slots first: they restore what serves.
    for start in replacements {
        if live < cap {
            live += 1;
            out.starts.push(start);
        }
    }
    // Surge: a new attempt beside an old one.
    let mut left = Vec::new();
    for o in outdated {
        let surged = !o.waiting && live < cap;
        if surged {
            live += 1;
            out.starts.push(Start { slot: o.slot, attempt: o.next_attempt, template: Template::Current });
        }
        left.push((surged, o));
    }
    // Within maxUnavailable: stop old ones, those not serving first (they
    // cost nothing), then those without a new one starting (a surge start
    // may find no room, e.g. under a UNIQUE constraint), from the highest slot.
    left.sort_by_key(|(surged, o)| (o.old.iter().any(|a| a.is_available()), *surged, std::cmp::Reverse(o.slot)));
    for (_, o) in left {
        let serves = o.old.iter().any(|a| a.is_available());
        if serves && available.saturating_sub(1) < floor {
            continue;
        }
        if serves {
            available -= 1;
        }
        for a in o.old {
            out.kills.push(Kill { name: a.name.clone(), reason: REASON_SUPERSEDED });
        }
    }
    out
}

/// The backoff a slot waits out, if its latest attempt failed and the
/// wait is not over at `now`.
fn backoff(atts: &[&Attempt], latest: &Attempt, retry: &RetryPolicy, now: Timestamp) -> Option<Backoff> {
    if latest.is_live() || !latest.is_failure() {
        return None;
    }
    let failures = consecutive_failures(atts);
    let wait = SignedDuration::try_from(retry.backoff(failures)).unwrap_or(SignedDuration::MAX);
    let until = latest.finished_at.unwrap_or(now).checked_add(wait).unwrap_or(Timestamp::MAX);
    (now < until).then(|| Backoff { slot: latest.slot, until, failures, why: latest.ended() })
}

/// Deletes a slot's terminal attempts beyond the latest few, first
/// carrying their failure count onto the oldest attempt that stays.
fn prune(atts: &[&Attempt], out: &mut GroupPlan) {
    let mut terminal: Vec<&Attempt> = atts.iter().copied().filter(|a| !a.is_live()).collect();
    if terminal.len() <= KEPT_TERMINAL_ATTEMPTS {
        return;
    }
    terminal.sort_by_key(|a| std::cmp::Reverse(a.attempt));
    let gone: Vec<&Attempt> = terminal.split_off(KEPT_TERMINAL_ATTEMPTS);
    let oldest_kept = terminal.last().expect("the latest attempts stay");
    let before = consecutive_failures(&gone);
    if oldest_kept.failures_before != before {
        out.annotate.push((oldest_kept.name.clone(), before));
    }
    out.prune.extend(gone.iter().map(|a| a.name.clone()));
}

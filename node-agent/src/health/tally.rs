//! The verdict over a placement's checks: each check's last outcome and its
//! failures in a row, the `HealthStatus` they add up to, whether that is a
//! change worth writing, and whether a check has failed often enough to
//! stop the container. Pure: no I/O, no clock (time comes in as arguments).

use berth_api::health::HealthStatus;

/// One check's record.
#[derive(Clone, Debug, Default)]
struct Check {
    /// Its last outcome: `Err` holds what it saw. `None` before it ran.
    last: Option<Result<(), String>>,
    /// Failures in a row that counted (outside the grace period).
    failures: u32,
    /// Stop the container after this many failures in a row (0: never).
    max: u32,
}

/// The outcomes of a placement's checks so far.
#[derive(Clone, Debug)]
pub struct Tally {
    checks: Vec<Check>,
}

impl Tally {
    /// A tally of checks with these `maxConsecutiveFailures`.
    pub fn new(max_failures: impl IntoIterator<Item = u32>) -> Self {
        Tally { checks: max_failures.into_iter().map(|max| Check { max, ..Default::default() }).collect() }
    }

    /// Records check `i`'s outcome; a failure within the grace period
    /// (`counts` false) is seen but not counted, a pass resets the count.
    pub fn record(&mut self, i: usize, outcome: Result<(), String>, counts: bool) {
        let Some(c) = self.checks.get_mut(i) else { return };
        match &outcome {
            Ok(()) => c.failures = 0,
            Err(_) if counts => c.failures = c.failures.saturating_add(1),
            Err(_) => {}
        }
        c.last = Some(outcome);
    }

    /// The health these outcomes add up to (without `lastTransitionTime`):
    /// none before any check ran; healthy once every check last passed.
    pub fn status(&self) -> Option<HealthStatus> {
        if self.checks.iter().all(|c| c.last.is_none()) {
            return None;
        }
        let healthy = self.checks.iter().all(|c| matches!(c.last, Some(Ok(()))));
        let consecutive_failures = self.checks.iter().map(|c| c.failures).max().unwrap_or(0);
        let message = if healthy { None } else { Some(self.message()) };
        Some(HealthStatus { healthy, consecutive_failures, last_transition_time: None, message })
    }

    /// What the failing check saw: the one with most failures in a row,
    /// else the first whose last outcome failed, else one not run yet.
    fn message(&self) -> String {
        let failed = |c: &&Check| matches!(c.last, Some(Err(_)));
        let worst = self.checks.iter().filter(failed).max_by_key(|c| c.failures).filter(|c| c.failures > 0);
        match worst.or_else(|| self.checks.iter().find(failed)) {
            Some(Check { last: Some(Err(seen)), .. }) => seen.clone(),
            _ => match self.checks.iter().position(|c| c.last.is_none()) {
                Some(i) => format!("healthChecks[{i}] has not run yet"),
                None => "unhealthy".into(),
            },
        }
    }

    /// The message to stop the container with, once a check has failed its
    /// `maxConsecutiveFailures` times in a row.
    pub fn verdict(&self) -> Option<String> {
        let c = self.checks.iter().find(|c| c.max > 0 && c.failures >= c.max)?;
        let seen = match &c.last {
            Some(Err(seen)) => seen.as_str(),
            _ => "failed",
        };
        Some(format!("its health check failed {} times in a row: {seen}", c.failures))
    }
}

/// `next` with its `lastTransitionTime` (`now` when healthiness flipped or
/// it is the first result, else the last written one's) if it is worth
/// writing over `written`: healthy flipped or the failure count changed.
pub fn to_write(written: Option<&HealthStatus>, mut next: HealthStatus, now: &str) -> Option<HealthStatus> {
    match written {
        Some(w) if w.healthy == next.healthy && w.consecutive_failures == next.consecutive_failures => None,
        Some(w) if w.healthy == next.healthy => {
            next.last_transition_time = w.last_transition_time.clone();
            Some(next)
        }
        _ => {
            next.last_transition_time = Some(now.to_string());
            Some(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(why: &str) -> Result<(), String> {
        Err(why.into())
    }

    #[test]
    fn nothing_is_reported_before_the_first_result_and_unhealthy_until_the_first_pass() {
        let mut t = Tally::new([3]);
        assert_eq!(t.status(), None);
        t.record(0, fail("GET /: status 500"), false);
        let s = t.status().unwrap();
        assert_eq!((s.healthy, s.consecutive_failures), (false, 0), "a failure in grace does not count");
        assert_eq!(s.message.as_deref(), Some("GET /: status 500"));
        t.record(0, Ok(()), false);
        assert_eq!(t.status().unwrap(), HealthStatus { healthy: true, ..Default::default() });
    }

    #[test]
    fn failures_in_a_row_stop_the_container_and_a_pass_resets_them() {
        let mut t = Tally::new([2, 0]);
        t.record(1, Ok(()), true);
        t.record(0, fail("connect 127.0.0.1:1: connection refused"), true);
        assert_eq!(t.verdict(), None);
        t.record(0, Ok(()), true);
        t.record(0, fail("x"), true);
        assert_eq!(t.status().unwrap().consecutive_failures, 1, "the pass reset the count");
        t.record(0, fail("connect 127.0.0.1:1: connection refused"), true);
        let why = t.verdict().expect("two failures in a row");
        assert!(why.contains("2 times") && why.ends_with("connection refused"), "{why}");
    }

    #[test]
    fn a_check_with_no_limit_never_stops_the_container() {
        let mut t = Tally::new([0]);
        for _ in 0..100 {
            t.record(0, fail("command exited 1"), true);
        }
        assert_eq!(t.verdict(), None);
        assert_eq!(t.status().unwrap().consecutive_failures, 100);
    }

    #[test]
    fn only_a_flip_or_a_new_failure_count_is_written() {
        let first = to_write(None, HealthStatus { healthy: false, ..Default::default() }, "t1").unwrap();
        assert_eq!(first.last_transition_time.as_deref(), Some("t1"));
        let same = HealthStatus { message: Some("other".into()), ..first.clone() };
        assert_eq!(to_write(Some(&first), same, "t2"), None, "a new message alone is not written");
        let more = HealthStatus { consecutive_failures: 1, ..first.clone() };
        let more = to_write(Some(&first), more, "t3").unwrap();
        assert_eq!(more.last_transition_time.as_deref(), Some("t1"), "no flip, no new transition time");
        let healthy = to_write(Some(&more), HealthStatus { healthy: true, ..Default::default() }, "t4").unwrap();
        assert_eq!(healthy.last_transition_time.as_deref(), Some("t4"));
    }
}

//! A service's revisions: each new set of its groups' templates gets the
//! next number; a set seen before (an undo) moves to the newest place
//! under a new number, as Kubernetes numbers a Deployment's ReplicaSets.

use berth_api::rollout::{GroupTemplate, Revision, template_hash};
use berth_api::{Job, JobStatus};

/// The most revisions kept in a Job's status.
pub const MAX_REVISIONS: usize = 10;

/// The Job's templates now, as a revision's.
pub fn templates(job: &Job) -> Vec<GroupTemplate> {
    job.spec
        .task_groups
        .iter()
        .map(|g| GroupTemplate { name: g.name.clone(), container: g.container.clone() })
        .collect()
}

fn same(a: &[GroupTemplate], b: &[GroupTemplate]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.name == y.name && template_hash(&x.container) == template_hash(&y.container))
}

/// `(revision now, revisions)` after the Job's templates now are recorded in `old`.
pub fn record(old: &JobStatus, job: &Job, now: &str) -> (u32, Vec<Revision>) {
    let current = templates(job);
    let mut revisions = old.revisions.clone();
    if let Some(last) = revisions.last()
        && same(&last.templates, &current)
    {
        return (last.revision, revisions);
    }
    let number = revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    revisions.retain(|r| !same(&r.templates, &current));
    revisions.push(Revision { revision: number, created_at: Some(now.to_string()), templates: current });
    let excess = revisions.len().saturating_sub(MAX_REVISIONS);
    revisions.drain(..excess);
    (number, revisions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{Container, JobSpec, TaskGroup};

    fn job(image: &str) -> Job {
        let container = Container { image: image.into(), ..Default::default() };
        Job::new(
            "web",
            JobSpec {
                task_groups: vec![TaskGroup { name: "web".into(), container, ..Default::default() }],
                ..Default::default()
            },
        )
    }

    #[test]
    fn each_new_template_gets_the_next_number_and_an_undo_moves_to_the_end() {
        let mut st = JobStatus::default();
        for (image, want) in [("a:1", 1), ("a:1", 1), ("a:2", 2), ("a:1", 3)] {
            let (rev, revs) = record(&st, &job(image), "t");
            assert_eq!(rev, want, "{image}");
            st.revision = Some(rev);
            st.revisions = revs;
        }
        let numbers: Vec<(u32, String)> =
            st.revisions.iter().map(|r| (r.revision, r.templates[0].container.image.clone())).collect();
        assert_eq!(numbers, [(2, "a:2".to_string()), (3, "a:1".to_string())]);
    }

    #[test]
    fn at_most_ten_revisions_are_kept_newest_last() {
        let mut st = JobStatus::default();
        for i in 0..15 {
            st.revisions = record(&st, &job(&format!("a:{i}")), "t").1;
        }
        assert_eq!(st.revisions.len(), MAX_REVISIONS);
        assert_eq!(st.revisions.first().unwrap().revision, 6);
        assert_eq!(st.revisions.last().unwrap().revision, 15);
    }
}

//! Marathon's `upgradeStrategy` as a Berth `updateStrategy`: Marathon keeps
//! at least `minimumHealthCapacity × instances` healthy and runs at most
//! `maximumOverCapacity × instances` extra during a deployment; Berth says
//! the same with integer `maxUnavailable` and `maxSurge`, computed for the
//! app's `instances` and commented in the output.

use berth_api::rollout::{IntOrPercent, UpdateStrategy};

use super::app::{App, defaults};
use super::error::Problem;

/// The update strategy of `app` with `instances`; the YAML comments that
/// explain it go to `comments`, problems to `out`.
pub fn upgrade_strategy(
    app: &App,
    instances: u32,
    out: &mut Vec<Problem>,
    comments: &mut Vec<(String, String)>,
) -> UpdateStrategy {
    let s = app.upgrade_strategy.clone().unwrap_or_default();
    let m = s.minimum_health_capacity.unwrap_or(defaults::MINIMUM_HEALTH_CAPACITY);
    let o = s.maximum_over_capacity.unwrap_or(defaults::MAXIMUM_OVER_CAPACITY);
    for (field, v) in [("minimumHealthCapacity", m), ("maximumOverCapacity", o)] {
        if !(0.0..=1.0).contains(&v) {
            out.push(Problem::invalid(format!("upgradeStrategy.{field}"), format!("{v} is not between 0 and 1")));
        }
    }
    // A small epsilon so that (1 - 0.9) × 10 is 1, not 0.999….
    let floor = |x: f64| (x + 1e-9).floor().clamp(0.0, f64::from(u32::MAX)) as u32;
    let unavailable = floor((1.0 - m) * f64::from(instances));
    let surge = floor(o * f64::from(instances));
    comments.push((
        "maxUnavailable".into(),
        format!("floor((1 - minimumHealthCapacity {m}) x {instances} instances); not rescaled with instances"),
    ));
    comments.push((
        "maxSurge".into(),
        format!("floor(maximumOverCapacity {o} x {instances} instances); not rescaled with instances"),
    ));
    UpdateStrategy { max_surge: Some(IntOrPercent::Int(surge)), max_unavailable: Some(IntOrPercent::Int(unavailable)) }
}

//! Placement constraints after Marathon and ECS: `[attribute, operator, value?]`
//! over an agent's attributes and `hostname`, and how a task group places
//! its instances (`strategy`, `gang`).
//!
//! A constraint is written as Marathon writes it, a list of two or three
//! strings. The CRD schema refuses the wrong shape (not 2–3 non-empty
//! strings) everywhere. What a structural schema cannot say per position —
//! the operator, whether its value is required — is said by CEL rules in
//! the schema, which kube-apiserver enforces but Berth's own store does not
//! evaluate; so [`Constraint::parse`] checks it all again (and that a
//! regular expression compiles), and the Job controller reports a failure
//! as a `Stalled` Job naming `spec.taskGroups[i].constraints[j]`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One constraint operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// Every instance on an agent with a different value of the attribute.
    Unique,
    /// Every instance on agents with the given value (or, without one,
    /// the value of the agent the first instance went to).
    Cluster,
    /// Instances spread evenly over the attribute's values (optionally
    /// over at least `n` values).
    GroupBy,
    /// Only agents whose value matches the regular expression (whole value).
    Like,
    /// Only agents whose value does not match (or who lack the attribute).
    Unlike,
    /// At most `n` instances per value of the attribute.
    MaxPer,
}

impl Operator {
    pub const ALL: [Operator; 6] =
        [Operator::Unique, Operator::Cluster, Operator::GroupBy, Operator::Like, Operator::Unlike, Operator::MaxPer];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Unique => "UNIQUE",
            Operator::Cluster => "CLUSTER",
            Operator::GroupBy => "GROUP_BY",
            Operator::Like => "LIKE",
            Operator::Unlike => "UNLIKE",
            Operator::MaxPer => "MAX_PER",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A constraint that parsed: its operator known, its value checked.
#[derive(Clone, Debug)]
pub struct Constraint {
    pub attribute: String,
    pub operator: Operator,
    pub value: Option<String>,
    /// `LIKE`/`UNLIKE`: the value anchored at both ends, as Marathon
    /// matches (the whole attribute value must match).
    pub regex: Option<regex::Regex>,
    /// `GROUP_BY` (groups) and `MAX_PER` (per value): the number.
    pub number: Option<u32>,
}

/// Why a constraint is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConstraintError {
    #[error("must be [attribute, operator] or [attribute, operator, value], got {0} items")]
    Shape(usize),
    #[error("unsupported operator \"{0}\": one of UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER")]
    Operator(String),
    #[error("{0} takes no value, got \"{1}\"")]
    UnexpectedValue(Operator, String),
    #[error("{0} requires a value")]
    MissingValue(Operator),
    #[error("{0} value \"{1}\" is not a positive integer")]
    NotANumber(Operator, String),
    #[error("{0} value \"{1}\" is not a regular expression: {2}")]
    Regex(Operator, String, String),
}

impl Constraint {
    /// Parses Marathon's `[attribute, operator, value?]`.
    pub fn parse(raw: &[String]) -> Result<Constraint, ConstraintError> {
        let (attribute, op, value) = match raw {
            [a, o] => (a, o, None),
            [a, o, v] => (a, o, Some(v.clone())),
            _ => return Err(ConstraintError::Shape(raw.len())),
        };
        let operator = Operator::ALL
            .into_iter()
            .find(|o| o.as_str() == op.as_str())
            .ok_or_else(|| ConstraintError::Operator(op.clone()))?;
        let mut c = Constraint { attribute: attribute.clone(), operator, value, regex: None, number: None };
        let number = |v: &str| match v.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConstraintError::NotANumber(operator, v.to_string())),
        };
        match (operator, c.value.as_deref()) {
            (Operator::Unique, Some(v)) => return Err(ConstraintError::UnexpectedValue(operator, v.into())),
            (Operator::Unique | Operator::Cluster | Operator::GroupBy, None) => {}
            (Operator::Cluster, Some(_)) => {}
            (Operator::GroupBy, Some(v)) => c.number = Some(number(v)?),
            (Operator::MaxPer, Some(v)) => c.number = Some(number(v)?),
            (Operator::Like | Operator::Unlike, Some(v)) => {
                let re = regex::Regex::new(&format!("^(?:{v})$"))
                    .map_err(|e| ConstraintError::Regex(operator, v.into(), e.to_string()))?;
                c.regex = Some(re);
            }
            (Operator::Like | Operator::Unlike | Operator::MaxPer, None) => {
                return Err(ConstraintError::MissingValue(operator));
            }
        }
        Ok(c)
    }
}

impl fmt::Display for Constraint {
    /// As users wrote it: `UNIQUE hostname`, `MAX_PER rack 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.operator, self.attribute)?;
        match &self.value {
            Some(v) => write!(f, " {v}"),
            None => Ok(()),
        }
    }
}

/// Parses every constraint of every task group of a Job's spec; the first
/// bad one is named by its field path.
pub fn validate(groups: &[crate::TaskGroup]) -> Result<(), String> {
    for (i, g) in groups.iter().enumerate() {
        for (j, raw) in g.constraints.iter().enumerate() {
            Constraint::parse(raw).map_err(|e| format!("spec.taskGroups[{i}].constraints[{j}]: {e}"))?;
        }
    }
    Ok(())
}

/// How a Job's scheduler picks among the agents that fit and satisfy the
/// constraints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The agent with the least free memory, then CPU: fills agents up,
    /// keeping others empty for big tasks.
    #[default]
    Binpack,
    /// The agent with the fewest of this Job's tasks, then the most free.
    Spread,
    /// Any agent that fits, at random.
    Random,
}

/// The schema of `constraints`: a list of 2–3 non-empty strings each.
/// The CEL rules say per position what [`Constraint::parse`] checks (but
/// regular expressions), so kube-apiserver refuses a bad constraint with
/// 422 naming it; Berth's own store does not evaluate CEL, and there the
/// Job controller's `InvalidSpec` condition reports it.
pub fn constraints_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 32,
        "items": {
            "type": "array",
            "minItems": 2,
            "maxItems": 3,
            "items": { "type": "string", "minLength": 1, "maxLength": 253 },
            "x-kubernetes-validations": [
                {
                    "rule": "self.size() < 2 || self[1] in ['UNIQUE', 'CLUSTER', 'GROUP_BY', 'LIKE', 'UNLIKE', 'MAX_PER']",
                    "message": "the operator must be one of UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER"
                },
                {
                    "rule": "self.size() != 2 || !(self[1] in ['LIKE', 'UNLIKE', 'MAX_PER'])",
                    "message": "LIKE, UNLIKE and MAX_PER require a value"
                },
                {
                    "rule": "self.size() != 3 || self[1] != 'UNIQUE'",
                    "message": "UNIQUE takes no value"
                },
                {
                    "rule": "self.size() != 3 || !(self[1] in ['GROUP_BY', 'MAX_PER']) || self[2].matches('^[1-9][0-9]*$')",
                    "message": "the value of GROUP_BY and MAX_PER is a positive integer"
                }
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[&str]) -> Result<Constraint, ConstraintError> {
        Constraint::parse(&raw.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn every_operator_parses_with_its_value_rules() {
        assert!(parse(&["hostname", "UNIQUE"]).is_ok());
        assert!(parse(&["rack", "CLUSTER"]).is_ok());
        assert!(parse(&["rack", "CLUSTER", "r1"]).is_ok());
        assert_eq!(parse(&["rack", "GROUP_BY", "3"]).unwrap().number, Some(3));
        assert!(parse(&["rack", "GROUP_BY"]).unwrap().number.is_none());
        assert_eq!(parse(&["rack", "MAX_PER", "2"]).unwrap().number, Some(2));
        assert!(parse(&["rack", "LIKE", "r[12]"]).is_ok());
        assert!(parse(&["rack", "UNLIKE", "r3"]).is_ok());
    }

    #[test]
    fn bad_constraints_say_what_is_wrong() {
        assert_eq!(parse(&["rack", "NEAR", "r1"]).unwrap_err(), ConstraintError::Operator("NEAR".into()));
        assert_eq!(parse(&["rack", "MAX_PER"]).unwrap_err(), ConstraintError::MissingValue(Operator::MaxPer));
        assert_eq!(parse(&["rack", "LIKE"]).unwrap_err(), ConstraintError::MissingValue(Operator::Like));
        assert!(matches!(parse(&["rack", "MAX_PER", "0"]), Err(ConstraintError::NotANumber(..))));
        assert!(matches!(parse(&["rack", "GROUP_BY", "x"]), Err(ConstraintError::NotANumber(..))));
        assert!(matches!(parse(&["rack", "LIKE", "("]), Err(ConstraintError::Regex(..))));
        assert!(matches!(parse(&["hostname", "UNIQUE", "x"]), Err(ConstraintError::UnexpectedValue(..))));
        assert_eq!(parse(&["rack"]).unwrap_err(), ConstraintError::Shape(1));
    }

    #[test]
    fn like_matches_the_whole_value_as_marathon_does() {
        let c = parse(&["rack", "LIKE", "r1"]).unwrap();
        let re = c.regex.unwrap();
        assert!(re.is_match("r1"));
        assert!(!re.is_match("r10"), "anchored at the end");
        assert!(!re.is_match("xr1"), "anchored at the start");
        let alt = parse(&["rack", "LIKE", "r1|r2"]).unwrap().regex.unwrap();
        assert!(alt.is_match("r2") && !alt.is_match("r12"), "alternation is anchored as a whole");
    }

    #[test]
    fn the_example_manifest_is_a_valid_job() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples/placement-job.yaml");
        let job: crate::Job = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(job.spec.strategy, Strategy::Spread);
        assert!(job.spec.task_groups[1].gang);
        validate(&job.spec.task_groups).unwrap();
    }

    #[test]
    fn validation_names_the_field() {
        let groups = vec![
            crate::TaskGroup { name: "a".into(), ..Default::default() },
            crate::TaskGroup {
                name: "b".into(),
                constraints: vec![vec!["hostname".into(), "UNIQUE".into()], vec!["rack".into(), "NEAR".into()]],
                ..Default::default()
            },
        ];
        let err = validate(&groups).unwrap_err();
        assert!(err.starts_with("spec.taskGroups[1].constraints[1]: unsupported operator \"NEAR\""), "{err}");
    }
}

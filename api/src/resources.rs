//! Resource amounts: [`Resources`] is what a manifest says (`cpu: 500m`,
//! `memory: 256Mi`); [`ResourceVec`] is the same in integers, for the
//! arithmetic of claims, capacity and fit.

use std::fmt;
use std::ops::{Add, AddAssign};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::{Quantity, QuantityError};

/// Resources as written in a manifest. A missing entry is zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Resources {
    /// CPU in cores: `500m` is half a core, `2` two cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory in bytes: `256Mi`, `1Gi`, `100M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

/// Which entry of a [`Resources`] could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {error}")]
pub struct ResourceError {
    pub field: &'static str,
    pub error: QuantityError,
}

impl Resources {
    /// The amounts as integers; the error names `cpu` or `memory`.
    pub fn to_vec(&self) -> Result<ResourceVec, ResourceError> {
        let cpu = match &self.cpu {
            Some(q) => q.millis().map_err(|error| ResourceError { field: "cpu", error })?,
            None => 0,
        };
        let memory = match &self.memory {
            Some(q) => q.bytes().map_err(|error| ResourceError { field: "memory", error })?,
            None => 0,
        };
        Ok(ResourceVec { cpu_millis: cpu, memory_bytes: memory })
    }
}

/// Resource amounts in integers: thousandths of a core and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResourceVec {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

impl ResourceVec {
    pub const ZERO: ResourceVec = ResourceVec { cpu_millis: 0, memory_bytes: 0 };

    pub fn new(cpu_millis: u64, memory_bytes: u64) -> Self {
        ResourceVec { cpu_millis, memory_bytes }
    }

    /// True when every entry of `self` is at most that of `other`.
    pub fn fits_in(&self, other: &ResourceVec) -> bool {
        self.cpu_millis <= other.cpu_millis && self.memory_bytes <= other.memory_bytes
    }

    /// `self - other`, or `None` if any entry would go below zero.
    pub fn checked_sub(&self, other: &ResourceVec) -> Option<ResourceVec> {
        Some(ResourceVec {
            cpu_millis: self.cpu_millis.checked_sub(other.cpu_millis)?,
            memory_bytes: self.memory_bytes.checked_sub(other.memory_bytes)?,
        })
    }

    /// `self - other`, each entry stopping at zero.
    pub fn saturating_sub(&self, other: &ResourceVec) -> ResourceVec {
        ResourceVec {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
        }
    }

    /// The entries of `self` that exceed `available`, each as
    /// `(name, needed, available)` in the units users write.
    pub fn shortfalls(&self, available: &ResourceVec) -> Vec<(&'static str, Quantity, Quantity)> {
        let mut out = Vec::new();
        if self.cpu_millis > available.cpu_millis {
            out.push(("cpu", Quantity::from_millis(self.cpu_millis), Quantity::from_millis(available.cpu_millis)));
        }
        if self.memory_bytes > available.memory_bytes {
            out.push(("memory", Quantity::from_bytes(self.memory_bytes), Quantity::from_bytes(available.memory_bytes)));
        }
        out
    }

    /// The amounts as a manifest would write them.
    pub fn to_resources(&self) -> Resources {
        Resources {
            cpu: Some(Quantity::from_millis(self.cpu_millis)),
            memory: Some(Quantity::from_bytes(self.memory_bytes)),
        }
    }
}

impl Add for ResourceVec {
    type Output = ResourceVec;
    /// Saturating: amounts near `u64::MAX` cannot occur in a real machine.
    fn add(self, o: ResourceVec) -> ResourceVec {
        ResourceVec {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
        }
    }
}

impl AddAssign for ResourceVec {
    fn add_assign(&mut self, o: ResourceVec) {
        *self = *self + o;
    }
}

impl std::iter::Sum for ResourceVec {
    fn sum<I: Iterator<Item = ResourceVec>>(iter: I) -> Self {
        iter.fold(ResourceVec::ZERO, Add::add)
    }
}

impl fmt::Display for ResourceVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu {}, memory {}", Quantity::from_millis(self.cpu_millis), Quantity::from_bytes(self.memory_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rv() -> impl Strategy<Value = ResourceVec> {
        (0u64..1 << 40, 0u64..1 << 50).prop_map(|(c, m)| ResourceVec::new(c, m))
    }

    #[test]
    fn a_bad_quantity_names_its_field() {
        let r = Resources { cpu: Some("1".into()), memory: Some("12x".into()) };
        assert_eq!(
            r.to_vec().unwrap_err().to_string(),
            r#"memory: "12x" is not a quantity (examples: 500m, 2, 256Mi, 1G)"#
        );
    }

    #[test]
    fn shortfalls_are_in_user_units() {
        let need = ResourceVec::new(500, 2 << 30);
        let have = ResourceVec::new(1000, 1 << 30);
        assert_eq!(need.shortfalls(&have), vec![("memory", "2Gi".into(), "1Gi".into())]);
    }

    proptest! {
        #[test]
        fn add_then_sub_round_trips(a in rv(), b in rv()) {
            prop_assert_eq!((a + b).checked_sub(&b), Some(a));
        }

        #[test]
        fn sub_never_goes_negative(a in rv(), b in rv()) {
            match a.checked_sub(&b) {
                Some(d) => prop_assert!(b.fits_in(&a) && d + b == a),
                None => prop_assert!(!b.fits_in(&a)),
            }
            let s = a.saturating_sub(&b);
            prop_assert!(s.fits_in(&a));
        }

        #[test]
        fn fits_in_is_monotone(a in rv(), b in rv(), extra in rv()) {
            if a.fits_in(&b) {
                prop_assert!(a.fits_in(&(b + extra)));
                prop_assert!(a.saturating_sub(&extra).fits_in(&b));
            }
        }

        #[test]
        fn shortfalls_are_empty_exactly_when_it_fits(a in rv(), b in rv()) {
            prop_assert_eq!(a.shortfalls(&b).is_empty(), a.fits_in(&b));
        }

        #[test]
        fn to_resources_round_trips(a in rv()) {
            prop_assert_eq!(a.to_resources().to_vec(), Ok(a));
        }
    }
}

//! Kubernetes quantity strings: `500m`, `2`, `1.5`, `256Mi`, `1G`, `1e3`.
//!
//! A [`Quantity`] keeps the text the user wrote (so objects round-trip as
//! applied); [`Quantity::millis`] and [`Quantity::bytes`] give the numbers
//! the scheduler adds up, rounded up as Kubernetes rounds requests.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The pattern Kubernetes gives quantities in OpenAPI schemas.
pub const PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// A quantity as written in a manifest, e.g. `500m` or `256Mi`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Quantity(pub String);

/// Why a string is not a usable quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{0:?} is not a quantity (examples: 500m, 2, 256Mi, 1G)")]
    Syntax(String),
    #[error("{0:?} is negative")]
    Negative(String),
    #[error("{0:?} is too large")]
    Overflow(String),
}

impl Quantity {
    pub fn new(s: impl Into<String>) -> Self {
        Quantity(s.into())
    }

    /// The value in thousandths (`500m` → 500, `2` → 2000), rounded up.
    pub fn millis(&self) -> Result<u64, QuantityError> {
        self.scaled(6)
    }

    /// The value in whole units (`256Mi` → 268435456), rounded up.
    pub fn bytes(&self) -> Result<u64, QuantityError> {
        self.scaled(9)
    }

    /// The value in nano-units divided by `10^div_exp`, rounded up.
    fn scaled(&self, div_exp: u32) -> Result<u64, QuantityError> {
        let nanos = parse_nanos(&self.0)?;
        let div = 10u128.pow(div_exp);
        u64::try_from(nanos.div_ceil(div)).map_err(|_| QuantityError::Overflow(self.0.clone()))
    }

    /// Formats thousandths of a core as Kubernetes does: `1500m`, `2`.
    pub fn from_millis(m: u64) -> Self {
        if m.is_multiple_of(1000) { Quantity((m / 1000).to_string()) } else { Quantity(format!("{m}m")) }
    }

    /// Formats bytes with the largest binary suffix that divides them.
    pub fn from_bytes(b: u64) -> Self {
        const SUFFIXES: [(&str, u32); 5] = [("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
        for (suffix, shift) in SUFFIXES {
            let unit = 1u64 << shift;
            if b != 0 && b.is_multiple_of(unit) {
                return Quantity(format!("{}{suffix}", b / unit));
            }
        }
        Quantity(b.to_string())
    }
}

/// Parses a quantity to nano-units. Negative values are refused: no
/// resource Berth counts can be below zero.
fn parse_nanos(s: &str) -> Result<u128, QuantityError> {
    let syntax = || QuantityError::Syntax(s.to_string());
    let overflow = || QuantityError::Overflow(s.to_string());
    let t = s.trim();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let num_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, suffix) = t.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(syntax());
    }
    // Multiplier from the suffix: (power of ten, power of two).
    let (ten_exp, two_exp): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().map_err(|_| syntax())?;
            (exp, 0)
        }
        _ => return Err(syntax()),
    };
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mantissa: u128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| overflow())? };
    if neg && mantissa != 0 {
        return Err(QuantityError::Negative(s.to_string()));
    }
    let exp = ten_exp + 9 - frac_part.len() as i32;
    let mut value = mantissa.checked_mul(1u128.checked_shl(two_exp).ok_or_else(overflow)?).ok_or_else(overflow)?;
    if exp >= 0 {
        value = value.checked_mul(10u128.checked_pow(exp as u32).ok_or_else(overflow)?).ok_or_else(overflow)?;
    } else {
        let div = 10u128.checked_pow((-exp) as u32).unwrap_or(u128::MAX);
        value = value.div_ceil(div);
    }
    Ok(value)
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity(s.to_string())
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Accepts a string or a number, as Kubernetes' int-or-string quantities do.
impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            U(u64),
            I(i64),
            F(f64),
        }
        Ok(Quantity(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::U(n) => n.to_string(),
            Raw::I(n) => n.to_string(),
            Raw::F(n) => n.to_string(),
        }))
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        Quantity::new(s)
    }

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(q("500m").millis(), Ok(500));
        assert_eq!(q("2").millis(), Ok(2000));
        assert_eq!(q("1.5").millis(), Ok(1500));
        assert_eq!(q("0.1").millis(), Ok(100));
        assert_eq!(q(".5").millis(), Ok(500));
        assert_eq!(q("256Mi").bytes(), Ok(256 << 20));
        assert_eq!(q("1Gi").bytes(), Ok(1 << 30));
        assert_eq!(q("1G").bytes(), Ok(1_000_000_000));
        assert_eq!(q("1e3").bytes(), Ok(1000));
        assert_eq!(q("128974848").bytes(), Ok(128_974_848));
        assert_eq!(q("1.5Gi").bytes(), Ok(3 << 29));
    }

    #[test]
    fn rounds_fractions_up() {
        assert_eq!(q("1n").millis(), Ok(1));
        assert_eq!(q("0.5").bytes(), Ok(1));
        assert_eq!(q("1500u").millis(), Ok(2));
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for bad in ["12x", "", "abc", "1..2", "Mi", "1Zi", "1e", "--1"] {
            assert!(matches!(q(bad).millis(), Err(QuantityError::Syntax(_))), "{bad:?} parsed");
        }
        assert!(matches!(q("-1").millis(), Err(QuantityError::Negative(_))));
        assert!(matches!(q("99999999999999999999999999Ei").bytes(), Err(QuantityError::Overflow(_))));
    }

    #[test]
    fn the_error_names_the_value() {
        assert_eq!(
            q("12x").bytes().unwrap_err().to_string(),
            r#""12x" is not a quantity (examples: 500m, 2, 256Mi, 1G)"#
        );
    }

    #[test]
    fn numbers_deserialize_as_quantities() {
        let v: Quantity = serde_json::from_str("2").unwrap();
        assert_eq!(v.millis(), Ok(2000));
    }

    proptest! {
        #[test]
        fn millis_format_round_trips(m in 0u64..1_000_000_000) {
            prop_assert_eq!(Quantity::from_millis(m).millis(), Ok(m));
        }

        #[test]
        fn bytes_format_round_trips(b in 0u64..(1u64 << 52)) {
            prop_assert_eq!(Quantity::from_bytes(b).bytes(), Ok(b));
        }

        #[test]
        fn binary_suffixes_scale_by_powers_of_two(n in 0u64..1_000_000, i in 0usize..4) {
            let suffix = ["Ki", "Mi", "Gi", "Ti"][i];
            prop_assert_eq!(q(&format!("{n}{suffix}")).bytes(), Ok(n << (10 * (i as u32 + 1))));
        }

        #[test]
        fn parsing_is_monotone(a in 0u64..10_000_000, b in 0u64..10_000_000) {
            let (qa, qb) = (q(&format!("{a}m")), q(&format!("{b}m")));
            prop_assert_eq!(a <= b, qa.millis().unwrap() <= qb.millis().unwrap());
        }

        #[test]
        fn what_matches_the_schema_pattern_parses(s in r"[0-9]{1,6}(\.[0-9]{1,3})?(m|k|M|G|Ki|Mi|Gi)?") {
            prop_assert!(q(&s).bytes().is_ok());
        }
    }
}

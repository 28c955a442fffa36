//! Integers in JSON bodies, read as JSON Schema reads them: a number with no fractional
//! part is an integer, so `2.0` is the integer 2 (and `2.5` is refused). serde alone takes
//! only the spelling without the fraction, which refuses a value the OpenAPI document's
//! `"type": "integer"` admits. Whole floats are taken up to 2^53, where each is exactly
//! one integer. Use with `#[serde(deserialize_with = "…")]`.

use std::fmt;

use serde::Deserializer;
use serde::de::{Error, Unexpected, Visitor};

struct Whole;

impl Visitor<'_> for Whole {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (a 64-bit signed one)")
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
        // Only up to 2^53, where every whole float is exactly one integer: beyond it a
        // float may stand for a number that was spelled out of range (the JSON parser
        // reads -9223372036854775809 as the float -2^63).
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if v.fract() == 0.0 && (-EXACT..=EXACT).contains(&v) {
            #[allow(clippy::cast_possible_truncation)] // whole and within 2^53: exact
            Ok(v as i64)
        } else {
            Err(E::invalid_type(Unexpected::Float(v), &self))
        }
    }
}

/// An `i64` field: `2` or `2.0`.
pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(Whole)
}

struct OptionalWhole;

impl<'de> Visitor<'de> for OptionalWhole {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (a 64-bit signed one) or null")
    }

    fn visit_none<E: Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        whole(d).map(Some)
    }

    // Deserialisers that hand a present value straight to the visitor.
    fn visit_i64<E: Error>(self, v: i64) -> Result<Option<i64>, E> {
        Whole.visit_i64(v).map(Some)
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Option<i64>, E> {
        Whole.visit_u64(v).map(Some)
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Option<i64>, E> {
        Whole.visit_f64(v).map(Some)
    }
}

/// An `Option<i64>` field: `2`, `2.0` or `null` (with `#[serde(default)]` for absent).
pub fn whole_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_option(OptionalWhole)
}

#[cfg(test)]
mod tests {
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, UnitDeserializer};

    use super::{whole, whole_opt};

    // serde's own value deserialisers: core has no JSON parser (the server's tests send
    // these spellings as JSON).
    fn f(v: f64) -> Result<i64, Error> {
        whole(v.into_deserializer())
    }

    #[test]
    fn whole_numbers_are_integers_in_either_spelling() {
        assert_eq!(
            whole::<serde::de::value::I64Deserializer<Error>>((-7i64).into_deserializer()),
            Ok(-7)
        );
        assert_eq!(
            whole::<serde::de::value::U64Deserializer<Error>>(
                u64::try_from(i64::MAX).unwrap().into_deserializer()
            ),
            Ok(i64::MAX)
        );
        assert!(
            whole::<serde::de::value::U64Deserializer<Error>>((1u64 << 63).into_deserializer())
                .is_err()
        );
        assert_eq!(f(2.0), Ok(2));
        assert_eq!(f(1e3), Ok(1000));
        assert_eq!(f(-9_007_199_254_740_992.0), Ok(-(1 << 53)));
        for bad in [
            2.5,
            -9_223_372_036_854_775_808.0,
            9_007_199_254_740_994.0,
            9.3e18,
            f64::INFINITY,
            f64::NAN,
        ] {
            assert!(f(bad).is_err(), "{bad}");
        }
        assert!(
            whole::<serde::de::value::StrDeserializer<Error>>("2".into_deserializer()).is_err()
        );
        assert_eq!(whole_opt(UnitDeserializer::<Error>::new()), Ok(None));
        assert_eq!(
            whole_opt::<serde::de::value::F64Deserializer<Error>>(3.0.into_deserializer()),
            Ok(Some(3))
        );
        assert!(
            whole_opt::<serde::de::value::F64Deserializer<Error>>(0.5.into_deserializer()).is_err()
        );
    }
}

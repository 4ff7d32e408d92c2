//! Administrative division codes in the 12-digit statistical format.
//!
//! A code is `PPCCDD` (county, 6 digits) + `TTT` (township) + `VVV` (village). A county code
//! ends in six zeros, a township code in three, a village code in none of the two groups.
//! Codes are parsed once, at the edge, into types that cannot hold anything else: a
//! `VillageCode` always names a village, and its township and county follow from it.

use std::fmt;
use std::str::FromStr;

/// Why a division code did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code is not exactly 12 ASCII digits.
    #[error("a division code has exactly 12 digits, got {0:?}")]
    Format(String),
    /// The digits name a different level (for example a township where a village was asked).
    #[error("{code} is not a {expected} code")]
    Level {
        /// The code as given.
        code: String,
        /// The level that was asked for.
        expected: &'static str,
    },
}

/// The level of a division, from the widest to the narrowest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A county (区县), for example 500240 石柱土家族自治县.
    County,
    /// A township-level unit (乡镇街道).
    Township,
    /// A village-level unit (村居).
    Village,
}

fn parse_digits(s: &str) -> Result<u64, CodeError> {
    if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::Format(s.chars().take(32).collect()));
    }
    s.parse::<u64>()
        .map_err(|_| CodeError::Format(s.chars().take(32).collect()))
}

fn level_of(n: u64) -> Option<Level> {
    let county = n / 1_000_000;
    let township = (n / 1_000) % 1_000;
    let village = n % 1_000;
    match (county, township, village) {
        (0, _, _) => None,
        (_, 0, 0) => Some(Level::County),
        (_, _, 0) => Some(Level::Township),
        (_, 0, _) => None,
        _ => Some(Level::Village),
    }
}

macro_rules! division_code {
    ($(#[$doc:meta])* $name:ident, $level:expr, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u64);

        impl $name {
            /// The code as its 12-digit number.
            pub fn as_u64(self) -> u64 {
                self.0
            }

            /// Builds the code from its number, checking its level.
            pub fn from_u64(n: u64) -> Result<Self, CodeError> {
                if n < 1_000_000_000_000 && level_of(n) == Some($level) {
                    Ok(Self(n))
                } else {
                    Err(CodeError::Level { code: format!("{n:012}"), expected: $label })
                }
            }
        }

        impl FromStr for $name {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                let n = parse_digits(s)?;
                Self::from_u64(n).map_err(|_| CodeError::Level {
                    code: s.to_string(),
                    expected: $label,
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:012}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:012})", stringify!($name), self.0)
            }
        }

        // Text for people (JSON), a number on the wire and in signed bodies.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_u64(self.0)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    let n = <u64 as serde::Deserialize>::deserialize(d)?;
                    Self::from_u64(n).map_err(serde::de::Error::custom)
                }
            }
        }

        crate::mapping::string_mapped!($name);
    };
}

division_code!(
    /// A county code, for example `500240000000` (石柱土家族自治县).
    CountyCode,
    Level::County,
    "county"
);
division_code!(
    /// A township-level code, for example `500240101000`.
    TownshipCode,
    Level::Township,
    "township"
);
division_code!(
    /// A village-level code, for example `500240101201`.
    VillageCode,
    Level::Village,
    "village"
);

impl CountyCode {
    /// The six-digit county part, as printed on documents (`500240`).
    pub fn short(self) -> u32 {
        // Fits: the code is below 10^12, so the quotient is below 10^6.
        u32::try_from(self.0 / 1_000_000).unwrap_or(u32::MAX)
    }

    /// Whether the township lies in this county.
    pub fn contains_township(self, township: TownshipCode) -> bool {
        township.county() == self
    }
}

impl TownshipCode {
    /// The county this township belongs to.
    pub fn county(self) -> CountyCode {
        CountyCode(self.0 / 1_000_000 * 1_000_000)
    }

    /// The township's village with the three-digit number `n` (1 to 999).
    pub fn village(self, n: u16) -> Result<VillageCode, CodeError> {
        VillageCode::from_u64(self.0 + u64::from(n))
    }
}

impl VillageCode {
    /// The township this village belongs to.
    pub fn township(self) -> TownshipCode {
        TownshipCode(self.0 / 1_000 * 1_000)
    }

    /// The county this village belongs to.
    pub fn county(self) -> CountyCode {
        self.township().county()
    }
}

/// Any division code, with its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Division {
    /// A whole county.
    County(CountyCode),
    /// A township and its villages.
    Township(TownshipCode),
    /// One village.
    Village(VillageCode),
}

impl Division {
    /// Whether `other` lies inside this division (or is it).
    pub fn contains(self, other: Division) -> bool {
        match other {
            Division::Village(v) => self.covers(v),
            Division::Township(t) => match self {
                Division::County(c) => t.county() == c,
                Division::Township(own) => own == t,
                Division::Village(_) => false,
            },
            Division::County(c) => self == Division::County(c),
        }
    }

    /// Whether `village` lies inside this division.
    pub fn covers(self, village: VillageCode) -> bool {
        match self {
            Division::County(c) => village.county() == c,
            Division::Township(t) => village.township() == t,
            Division::Village(v) => village == v,
        }
    }

    /// The level of the division.
    pub fn level(self) -> Level {
        match self {
            Division::County(_) => Level::County,
            Division::Township(_) => Level::Township,
            Division::Village(_) => Level::Village,
        }
    }
}

impl FromStr for Division {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let n = parse_digits(s)?;
        match level_of(n) {
            Some(Level::County) => Ok(Division::County(CountyCode(n))),
            Some(Level::Township) => Ok(Division::Township(TownshipCode(n))),
            Some(Level::Village) => Ok(Division::Village(VillageCode(n))),
            None => Err(CodeError::Level {
                code: s.to_string(),
                expected: "county, township or village",
            }),
        }
    }
}

impl fmt::Display for Division {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Division::County(c) => c.fmt(f),
            Division::Township(t) => t.fmt(f),
            Division::Village(v) => v.fmt(f),
        }
    }
}

crate::mapping::string_mapped!(Division);

impl From<VillageCode> for Division {
    fn from(v: VillageCode) -> Division {
        Division::Village(v)
    }
}

impl Division {
    /// The code as its 12-digit number.
    pub fn as_u64(self) -> u64 {
        match self {
            Division::County(c) => c.0,
            Division::Township(t) => t.0,
            Division::Village(v) => v.0,
        }
    }
}

impl serde::Serialize for Division {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u64(self.as_u64())
        }
    }
}

impl<'de> serde::Deserialize<'de> for Division {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            let n = <u64 as serde::Deserialize>::deserialize(d)?;
            format!("{n:012}").parse().map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_division_contains_what_lies_inside_it() {
        let d = |s: &str| s.parse::<Division>().unwrap();
        assert!(d("500240000000").contains(d("500240001000")));
        assert!(d("500240000000").contains(d("500240001201")));
        assert!(d("500240001000").contains(d("500240001201")));
        assert!(d("500240001000").contains(d("500240001000")));
        assert!(!d("500240001000").contains(d("500240002000")));
        assert!(!d("500240001000").contains(d("500240000000")));
        assert!(!d("500240001201").contains(d("500240001000")));
        assert!(!d("500240000000").contains(d("500241000000")));
    }

    #[test]
    fn village_code_knows_its_township_and_county() {
        let v: VillageCode = "500240101201".parse().unwrap();
        assert_eq!(v.township().to_string(), "500240101000");
        assert_eq!(v.county().to_string(), "500240000000");
        assert_eq!(v.county().short(), 500240);
    }

    #[test]
    fn codes_of_the_wrong_level_are_refused() {
        assert!(matches!(
            "500240101000".parse::<VillageCode>(),
            Err(CodeError::Level { .. })
        ));
        assert!(matches!(
            "500240101201".parse::<TownshipCode>(),
            Err(CodeError::Level { .. })
        ));
        assert!(matches!(
            "500240000201".parse::<VillageCode>(),
            Err(CodeError::Level { .. })
        ));
        assert!(matches!(
            "50024010120".parse::<VillageCode>(),
            Err(CodeError::Format(_))
        ));
        assert!(matches!(
            "5002401012０1".parse::<VillageCode>(),
            Err(CodeError::Format(_))
        ));
        assert!(matches!(
            "000000000000".parse::<Division>(),
            Err(CodeError::Level { .. })
        ));
    }

    #[test]
    fn division_covers_its_villages_only() {
        let v: VillageCode = "500240101201".parse().unwrap();
        let other: VillageCode = "500240102201".parse().unwrap();
        let t: Division = "500240101000".parse().unwrap();
        assert!(t.covers(v));
        assert!(!t.covers(other));
        let c: Division = "500240000000".parse().unwrap();
        assert!(c.covers(v) && c.covers(other));
        assert!(Division::Village(v).covers(v));
        assert!(!Division::Village(v).covers(other));
    }
}

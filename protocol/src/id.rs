//! Typed identifiers, parsed once at the edge.
//!
//! Record, event and party ids are random (the caller supplies the randomness, so the
//! simulator stays deterministic) and need no coordination between offline offices.
//! A `NodeId` is a node's Ed25519 public key; a `StaffId` is a local account name.

use std::fmt;
use std::str::FromStr;

use rand_core::RngCore;

/// Why an identifier did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text does not start with the prefix of this kind of id.
    #[error("expected an id starting with {expected:?}, got {found:?}")]
    Prefix {
        /// The prefix of the expected kind.
        expected: &'static str,
        /// The text as given (shortened).
        found: String,
    },
    /// The id has the wrong length or characters that are not lowercase hex.
    #[error("{kind} must be {hex_len} lowercase hex digits after the prefix, got {found:?}")]
    Hex {
        /// The kind of id.
        kind: &'static str,
        /// The number of hex digits expected.
        hex_len: usize,
        /// The text as given (shortened).
        found: String,
    },
    /// A staff id that is empty, too long or has characters outside `[a-z0-9._-]`.
    #[error(
        "a staff id is 1 to {max} characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, got {0:?}",
        max = StaffId::LEN_MAX
    )]
    Staff(String),
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Writes `bytes` as lower-case hex in one piece (ids are written wherever a record is read
/// or shown, so this is on every path that handles events).
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (pair, b) in buf.chunks_exact_mut(2).zip(chunk) {
            pair.copy_from_slice(&[digit(b >> 4), digit(b & 0xf)]);
        }
        let written = buf.get(..chunk.len() * 2).unwrap_or_default();
        // Only ASCII digits were written.
        f.write_str(std::str::from_utf8(written).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

fn parse_hex<const N: usize>(kind: &'static str, s: &str) -> Result<[u8; N], IdError> {
    let err = || IdError::Hex {
        kind,
        hex_len: N * 2,
        found: shorten(s),
    };
    let digits = s.as_bytes();
    if digits.len() != N * 2 {
        return Err(err());
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = hex_value(pair.first().copied()).ok_or_else(err)?;
        let lo = hex_value(pair.get(1).copied()).ok_or_else(err)?;
        *byte = hi << 4 | lo;
    }
    Ok(out)
}

fn hex_value(c: Option<u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $len:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// The text every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id from the caller's randomness.
            pub fn random(rng: &mut dyn RngCore) -> Self {
                let mut bytes = [0u8; $len];
                rng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            /// The id from its raw bytes.
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes of the id.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The first eight hex digits, for people to read and say aloud.
            pub fn short(&self) -> String {
                let full = self.to_string();
                full.chars().take(Self::PREFIX.len() + 8).collect()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(Self::PREFIX)?;
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let rest = s.strip_prefix(Self::PREFIX).ok_or_else(|| IdError::Prefix {
                    expected: Self::PREFIX,
                    found: shorten(s),
                })?;
                parse_hex::<$len>(stringify!($name), rest).map(Self)
            }
        }

        // Text for people (JSON), raw bytes on the wire and in signed bodies.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; $len]>::deserialize(d).map(Self)
                }
            }
        }

        crate::mapping::string_mapped!($name);
    };
}

random_id!(
    /// A dispute case (矛盾纠纷), for example `case-0f3a…`.
    CaseId,
    16,
    "case-"
);
random_id!(
    /// A petition (信访事项), for example `pet-91c2…`.
    PetitionId,
    16,
    "pet-"
);
random_id!(
    /// A division's own record (`owned`), for example a township's quarantine report:
    /// `div-5a0e…`.
    OwnedId,
    16,
    "div-"
);
random_id!(
    /// One event in a record's history.
    EventId,
    16,
    "ev-"
);
random_id!(
    /// A party (当事人) inside one record.
    PartyId,
    8,
    "p-"
);
random_id!(
    /// A node: the hex of its Ed25519 public key.
    NodeId,
    32,
    "node-"
);

/// The id of either kind of record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum RecordId {
    /// A dispute case.
    Case(CaseId),
    /// A petition.
    Petition(PetitionId),
    /// A division's own record (`owned`): read by its owner and the levels above only.
    Owned(OwnedId),
}

impl RecordId {
    /// Whether this is a division's own record rather than a case or petition.
    pub fn is_owned(&self) -> bool {
        matches!(self, RecordId::Owned(_))
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordId::Case(c) => c.fmt(f),
            RecordId::Petition(p) => p.fmt(f),
            RecordId::Owned(o) => o.fmt(f),
        }
    }
}

impl FromStr for RecordId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.starts_with(CaseId::PREFIX) {
            s.parse().map(RecordId::Case)
        } else if s.starts_with(PetitionId::PREFIX) {
            s.parse().map(RecordId::Petition)
        } else if s.starts_with(OwnedId::PREFIX) {
            s.parse().map(RecordId::Owned)
        } else {
            Err(IdError::Prefix {
                expected: "case-, pet- or div-",
                found: shorten(s),
            })
        }
    }
}

impl serde::Serialize for RecordId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.collect_str(self);
        }
        match self {
            RecordId::Case(c) => (0u8, c.0).serialize(s),
            RecordId::Petition(p) => (1u8, p.0).serialize(s),
            RecordId::Owned(o) => (2u8, o.0).serialize(s),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RecordId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            return s.parse().map_err(serde::de::Error::custom);
        }
        match <(u8, [u8; 16])>::deserialize(d)? {
            (0, bytes) => Ok(RecordId::Case(CaseId(bytes))),
            (1, bytes) => Ok(RecordId::Petition(PetitionId(bytes))),
            (2, bytes) => Ok(RecordId::Owned(OwnedId(bytes))),
            (tag, _) => Err(serde::de::Error::custom(format!(
                "unknown record kind {tag}"
            ))),
        }
    }
}

crate::mapping::string_mapped!(RecordId);

/// A staff member's account name at a node, for example `zhang.wei`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StaffId(String);

impl StaffId {
    /// The longest staff id accepted.
    pub const LEN_MAX: usize = 32;

    /// The account name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl StaffId {
    /// For constants known to be valid; checked in debug builds.
    pub(crate) fn from_str_unchecked(s: &str) -> StaffId {
        debug_assert!(s.parse::<StaffId>().is_ok());
        StaffId(s.to_string())
    }
}

impl FromStr for StaffId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let bytes = s.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= Self::LEN_MAX
            && bytes.first().is_some_and(|&c| ok_char(c))
            && bytes
                .iter()
                .all(|&c| ok_char(c) || c == b'.' || c == b'_' || c == b'-');
        if valid {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Staff(shorten(s)))
        }
    }
}

impl fmt::Display for StaffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StaffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaffId({})", self.0)
    }
}

impl serde::Serialize for StaffId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for StaffId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

crate::mapping::string_mapped!(StaffId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = CaseId::from_bytes([0xab; 16]);
        let text = id.to_string();
        assert_eq!(text, format!("case-{}", "ab".repeat(16)));
        assert_eq!(text.parse::<CaseId>().unwrap(), id);
        assert_eq!(id.short(), "case-abababab");
        let rec: RecordId = text.parse().unwrap();
        assert_eq!(rec, RecordId::Case(id));
    }

    #[test]
    fn malformed_ids_are_typed_errors() {
        assert!(matches!(
            "pet-00".parse::<CaseId>(),
            Err(IdError::Prefix { .. })
        ));
        assert!(matches!(
            "case-zz".parse::<CaseId>(),
            Err(IdError::Hex { .. })
        ));
        assert!(matches!(
            format!("case-{}", "AB".repeat(16)).parse::<CaseId>(),
            Err(IdError::Hex { .. })
        ));
        assert!(matches!("".parse::<StaffId>(), Err(IdError::Staff(_))));
        assert!(matches!("Zhang".parse::<StaffId>(), Err(IdError::Staff(_))));
        assert!(matches!(".x".parse::<StaffId>(), Err(IdError::Staff(_))));
        assert!("zhang.wei-2".parse::<StaffId>().is_ok());
    }
}

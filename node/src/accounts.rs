//! Local staff accounts for the web app: who may sign in at this office, with which role.
//! Passwords are kept as argon2id hashes. Accounts belong to one node and never sync.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use guihe_protocol::id::StaffId;
use serde::{Deserialize, Serialize};

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// 调解员: records and works cases and petitions.
    Mediator,
    /// 村干部.
    VillageCadre,
    /// 驻村民警.
    PoliceOfficer,
    /// 法律顾问.
    LegalAdviser,
    /// 乡镇审核员: also settles contradictions (review).
    TownshipReviewer,
    /// 县级分析员: reads, dashboards and exports; writes nothing.
    CountyAnalyst,
    /// 管理员: manages accounts; writes nothing.
    Admin,
}

impl StaffRole {
    /// Every role, in the order forms list them.
    pub const ALL: [StaffRole; 7] = [
        StaffRole::Mediator,
        StaffRole::VillageCadre,
        StaffRole::PoliceOfficer,
        StaffRole::LegalAdviser,
        StaffRole::TownshipReviewer,
        StaffRole::CountyAnalyst,
        StaffRole::Admin,
    ];

    /// The code used in forms and on the command line.
    pub fn code(self) -> &'static str {
        match self {
            StaffRole::Mediator => "mediator",
            StaffRole::VillageCadre => "village_cadre",
            StaffRole::PoliceOfficer => "police_officer",
            StaffRole::LegalAdviser => "legal_adviser",
            StaffRole::TownshipReviewer => "township_reviewer",
            StaffRole::CountyAnalyst => "county_analyst",
            StaffRole::Admin => "admin",
        }
    }

    /// The Chinese name.
    pub fn label_zh(self) -> &'static str {
        match self {
            StaffRole::Mediator => "调解员",
            StaffRole::VillageCadre => "村干部",
            StaffRole::PoliceOfficer => "驻村民警",
            StaffRole::LegalAdviser => "法律顾问",
            StaffRole::TownshipReviewer => "乡镇审核员",
            StaffRole::CountyAnalyst => "县级分析员",
            StaffRole::Admin => "管理员",
        }
    }

    /// Whether the role records events.
    pub fn writes(self) -> bool {
        !matches!(self, StaffRole::CountyAnalyst | StaffRole::Admin)
    }
}

impl std::str::FromStr for StaffRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StaffRole::ALL
            .into_iter()
            .find(|r| r.code() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}; one of {}",
                    StaffRole::ALL.map(StaffRole::code).join(", ")
                )
            })
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The sign-in name, also the staff id written on every event.
    pub name: StaffId,
    /// The name shown.
    pub display: String,
    /// The role.
    pub role: StaffRole,
    /// The argon2id hash of the password (PHC string).
    pub hash: String,
}

/// Why an account could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The password is too short.
    #[error("the password must have at least 8 characters")]
    Short,
    /// Hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
}

/// Makes an account with a freshly hashed password.
pub fn new_account(
    name: StaffId,
    display: String,
    role: StaffRole,
    password: &str,
) -> Result<Account, AccountError> {
    if password.chars().count() < 8 {
        return Err(AccountError::Short);
    }
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AccountError::Hash(e.to_string()))?
        .to_string();
    Ok(Account {
        name,
        display,
        role,
        hash,
    })
}

impl Account {
    /// Whether `password` is this account's.
    pub fn check(&self, password: &str) -> bool {
        PasswordHash::new(&self.hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_checks_and_a_wrong_one_does_not() {
        let a = new_account(
            "tan".parse().unwrap(),
            "谭".into(),
            StaffRole::Mediator,
            "正确的口令abc",
        )
        .unwrap();
        assert!(a.check("正确的口令abc"));
        assert!(!a.check("正确的口令abd"));
        assert!(a.hash.starts_with("$argon2id$"));
        assert!(new_account("x".parse().unwrap(), "x".into(), StaffRole::Admin, "short").is_err());
        assert_eq!(
            "county_analyst".parse::<StaffRole>(),
            Ok(StaffRole::CountyAnalyst)
        );
        assert!("boss".parse::<StaffRole>().is_err());
    }
}

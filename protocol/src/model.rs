//! The vocabulary of the mediation domain: kinds of record, categories, risk levels,
//! petition channels and parties. Each coded value has a stable English code (stored in
//! documents and on the wire) and a Chinese and an English label for people.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use crate::id::IdError;

/// Why a coded value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {kind}; known codes: {known}")]
pub struct CodeParseError {
    /// What kind of value was expected.
    pub kind: &'static str,
    /// The text as given (shortened).
    pub value: String,
    /// The codes that are accepted.
    pub known: String,
}

/// Declares an enum of coded values with its code, Chinese and English labels.
macro_rules! coded {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident = $code:literal, $zh:literal, $en:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable code stored in documents.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)+ }
            }

            /// The Chinese label shown first in the interface.
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh,)+ }
            }

            /// The English label shown alongside.
            pub fn label_en(self) -> &'static str {
                match self { $($name::$variant => $en,)+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::model::CodeParseError;
            fn from_str(s: &str) -> Result<Self, $crate::model::CodeParseError> {
                match s {
                    $($code => Ok($name::$variant),)+
                    _ => Err($crate::model::CodeParseError {
                        kind: $what,
                        value: s.chars().take(40).collect(),
                        known: [$($code),+].join(", "),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.code())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        crate::mapping::string_mapped!($name);
    };
}
pub(crate) use coded;

coded!(
    /// The two kinds of record.
    Kind, "record kind", {
        /// A dispute case (矛盾纠纷).
        Case = "case", "矛盾纠纷", "dispute case";
        /// A petition (信访事项).
        Petition = "petition", "信访事项", "petition";
    }
);

coded!(
    /// Dispute categories of the people's mediation statistics.
    Category, "dispute category", {
        /// 婚姻家庭.
        MarriageFamily = "marriage_family", "婚姻家庭", "marriage and family";
        /// 邻里.
        Neighbour = "neighbour", "邻里", "neighbours";
        /// 房屋宅基地.
        HousingHomestead = "housing_homestead", "房屋宅基地", "housing and homestead";
        /// 山林土地.
        ForestLand = "forest_land", "山林土地", "forest and land";
        /// 合同.
        Contract = "contract", "合同", "contract";
        /// 生产经营.
        ProductionBusiness = "production_business", "生产经营", "production and business";
        /// 损害赔偿.
        DamageCompensation = "damage_compensation", "损害赔偿", "damage compensation";
        /// 劳动争议.
        Labour = "labour", "劳动争议", "labour and wages";
        /// 征地拆迁.
        LandRequisition = "land_requisition", "征地拆迁", "land requisition and demolition";
        /// 环境污染.
        Pollution = "pollution", "环境污染", "pollution";
        /// 医疗纠纷.
        Medical = "medical", "医疗纠纷", "medical";
        /// 道路交通.
        Traffic = "traffic", "道路交通", "traffic";
        /// 其他.
        Other = "other", "其他", "other";
    }
);

coded!(
    /// Risk level of a dispute. A major risk goes to the township at once.
    Risk, "risk level", {
        /// 一般.
        General = "general", "一般", "general";
        /// 较大.
        Significant = "significant", "较大", "significant";
        /// 重大.
        Major = "major", "重大", "major";
    }
);

coded!(
    /// How a petition arrived.
    Channel, "petition channel", {
        /// 来信.
        Letter = "letter", "来信", "letter";
        /// 来访.
        Visit = "visit", "来访", "visit";
        /// 电话.
        Phone = "phone", "电话", "phone";
        /// 网上信访.
        Online = "online", "网上", "online";
    }
);

coded!(
    /// A party's role in the record.
    PartyRole, "party role", {
        /// 申请人 (the party that brought the dispute).
        Applicant = "applicant", "申请人", "applicant";
        /// 被申请人.
        Respondent = "respondent", "被申请人", "respondent";
        /// 信访人.
        Petitioner = "petitioner", "信访人", "petitioner";
        /// 其他当事人 or a third party.
        Other = "other", "其他", "other";
    }
);

/// Upper bounds on text that people type, so that one record cannot grow without limit.
pub mod limits {
    /// Longest party name, in characters.
    pub const NAME_CHARS_MAX: usize = 64;
    /// Longest note, reason, terms or place, in characters.
    pub const NOTE_CHARS_MAX: usize = 4_000;
    /// Longest summary, in characters.
    pub const SUMMARY_CHARS_MAX: usize = 20_000;
    /// Most parties in one record.
    pub const PARTIES_MAX: usize = 64;
    /// Most villages one record may belong to.
    pub const JURISDICTIONS_MAX: usize = 16;
    /// Most events in one record. A case has a few dozen; the bound keeps the fold cheap.
    pub const EVENTS_MAX: usize = 4_096;
    /// Most events one event may name as seen before it.
    pub const AFTER_MAX: usize = 64;
}

/// A party (当事人) to a case or a petition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Party {
    /// The party's name as recorded.
    pub name: String,
    /// The party's role.
    pub role: PartyRole,
    /// Whether the party is a minor. A record with a minor is restricted.
    pub minor: bool,
    /// A phone number or address, if the party gave one.
    pub contact: Option<String>,
    /// The particulars a mediation agreement names (record schema 2). Absent from the
    /// document when none were taken, so a schema 1 party reads as it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[autosurgeon(missing = "Option::default")]
    pub details: Option<Particulars>,
}

coded!(
    /// A party's sex, as an agreement states it.
    Sex, "sex", {
        /// 男.
        Male = "male", "男", "male";
        /// 女.
        Female = "female", "女", "female";
    }
);

/// A party's particulars (record schema 2): what a mediation agreement must name of each
/// party under the People's Mediation Law, art. 29. Every field may be left blank; an
/// empty text is "not given".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Particulars {
    /// 性别.
    pub sex: Option<Sex>,
    /// 年龄, in years.
    pub age: Option<u8>,
    /// 民族, as the party states it (土家族, 汉族, …).
    pub ethnicity: String,
    /// 职业或工作单位.
    pub occupation: String,
    /// 住所.
    pub address: String,
    /// 公民身份号码. Kept in the record (and its history) for the agreement; masked in
    /// lists, views and exports (see SECURITY.md).
    pub id_number: String,
}

/// The oldest age a party may be given.
pub const AGE_MAX: u8 = 130;

impl Particulars {
    /// Whether nothing was given.
    pub fn is_blank(&self) -> bool {
        *self == Particulars::default()
    }

    /// Checks each field against its bound, and the ID number's form: 18 characters, the
    /// first 17 digits and the last a digit or X (or the old 15 digits).
    pub fn check(&self) -> Result<(), FieldError> {
        if let Some(age) = self.age
            && age > AGE_MAX
        {
            return Err(FieldError::Range {
                field: "party age",
                value: i64::from(age),
                min: 0,
                max: i64::from(AGE_MAX),
            });
        }
        check_text("party ethnicity", &self.ethnicity, 16, false)?;
        check_text(
            "party occupation",
            &self.occupation,
            limits::NAME_CHARS_MAX * 2,
            false,
        )?;
        check_text(
            "party address",
            &self.address,
            limits::NAME_CHARS_MAX * 2,
            false,
        )?;
        let id = self.id_number.as_str();
        let well_formed = id.is_empty()
            || (id.len() == 18
                && id.bytes().take(17).all(|b| b.is_ascii_digit())
                && id
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_digit() || b == b'X'))
            || (id.len() == 15 && id.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return Err(FieldError::Format {
                field: "party ID number",
            });
        }
        Ok(())
    }

    /// The ID number as lists show it: the first three and the last four characters, the
    /// rest starred. Empty if none was given.
    pub fn id_masked(&self) -> String {
        mask_id(&self.id_number)
    }
}

/// A search text read as an ID number, if it is one: 18 characters (the last may be x or
/// X) or the old 15 digits, upper-cased.
pub fn id_needle(text: &str) -> Option<String> {
    let id = text.trim().to_ascii_uppercase();
    let details = Particulars {
        id_number: id.clone(),
        ..Particulars::default()
    };
    (!id.is_empty() && details.check().is_ok()).then_some(id)
}

/// An ID number with all but its first three and last four characters starred.
pub fn mask_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 3 || i + 4 >= chars.len() {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

coded!(
    /// Where a dispute came to the office from (纠纷来源).
    Source, "source", {
        /// 当事人申请.
        Applied = "applied", "当事人申请", "a party applied";
        /// 主动排查.
        Screening = "screening", "排查发现", "found by screening";
        /// 网格员上报.
        Grid = "grid", "网格员上报", "reported by a grid worker";
        /// 派出所移送.
        Police = "police", "派出所移送", "passed on by the police station";
        /// 法院委派（委托）.
        Court = "court", "法院委派", "delegated by a court";
        /// 部门移交.
        Department = "department", "部门移交", "passed on by a department";
        /// 其他.
        Other = "other", "其他", "other";
    }
);

coded!(
    /// A petition's type (信访事项类型), which decides how it is handled.
    PetitionType, "petition type", {
        /// 建议意见类.
        Suggestion = "suggestion", "建议意见", "suggestion";
        /// 检举控告类.
        Accusation = "accusation", "检举控告", "accusation";
        /// 申诉求决类.
        Appeal = "appeal", "申诉求决", "appeal or request";
    }
);

/// What intake records of the matter itself (record schema 2), beside the parties: where it
/// came from, where it happened, what is at stake and how many people it involves, and for
/// a petition its type and the flags 三无 counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Reconcile, Hydrate)]
pub struct Matter {
    /// 纠纷来源.
    pub source: Option<Source>,
    /// 发生地点.
    pub place: String,
    /// 涉及金额, in whole yuan.
    pub amount_yuan: Option<u64>,
    /// 涉及人数.
    pub people: Option<u32>,
    /// 信访类型 (petitions).
    pub petition_type: Option<PetitionType>,
    /// 集体访: five or more people came together (petitions).
    pub collective: bool,
    /// 越级访: the petition skipped the level responsible (petitions).
    pub skip_level: bool,
}

/// The most people one matter may be said to involve.
pub const PEOPLE_MAX: u32 = 100_000;

impl Matter {
    /// Checks each field against its bound.
    pub fn check(&self) -> Result<(), FieldError> {
        check_text("place", &self.place, limits::NAME_CHARS_MAX * 2, false)?;
        if let Some(people) = self.people
            && people > PEOPLE_MAX
        {
            return Err(FieldError::Range {
                field: "people involved",
                value: i64::from(people),
                min: 0,
                max: i64::from(PEOPLE_MAX),
            });
        }
        if let Some(amount) = self.amount_yuan
            && amount > 1_000_000_000_000
        {
            return Err(FieldError::Range {
                field: "amount at stake",
                value: i64::try_from(amount).unwrap_or(i64::MAX),
                min: 0,
                max: 1_000_000_000_000,
            });
        }
        Ok(())
    }

    /// Checks each field, and that a dispute (a case) carries none of a petition's fields:
    /// its type and the 集体访 / 越级访 flags describe petitions only, and a dispute that
    /// held them would be counted among the petitions' figures.
    pub fn check_for(&self, kind: Kind) -> Result<(), FieldError> {
        self.check()?;
        if kind == Kind::Case
            && (self.petition_type.is_some() || self.collective || self.skip_level)
        {
            return Err(FieldError::PetitionOnly {
                field: "petition type",
            });
        }
        Ok(())
    }
}

/// Why a typed field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A required text is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A text is longer than its bound.
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in characters.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A number is outside its range.
    #[error("{field} must be between {min} and {max}, got {value}")]
    Range {
        /// The field.
        field: &'static str,
        /// The value given.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A text is not in the form the field takes.
    #[error("{field} is not well formed")]
    Format {
        /// The field.
        field: &'static str,
    },
    /// A petition's field given for a dispute.
    #[error("{field} is recorded for petitions only")]
    PetitionOnly {
        /// The field.
        field: &'static str,
    },
    /// A code that does not parse.
    #[error(transparent)]
    Code(#[from] CodeParseError),
    /// An id that does not parse.
    #[error(transparent)]
    Id(#[from] IdError),
}

/// Checks a text against its bound; `required` texts must also be non-empty.
pub fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    required: bool,
) -> Result<(), FieldError> {
    if required && text.trim().is_empty() {
        return Err(FieldError::Empty { field });
    }
    let len = text.chars().count();
    if len > max {
        return Err(FieldError::TooLong { field, len, max });
    }
    Ok(())
}

impl Party {
    /// Checks the party's fields against their bounds.
    pub fn check(&self) -> Result<(), FieldError> {
        check_text("party name", &self.name, limits::NAME_CHARS_MAX, true)?;
        if let Some(contact) = &self.contact {
            check_text("party contact", contact, limits::NAME_CHARS_MAX * 2, false)?;
        }
        if let Some(details) = &self.details {
            details.check()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_typed_errors() {
        for c in Category::ALL {
            assert_eq!(c.code().parse::<Category>().unwrap(), *c);
        }
        let err = "feud".parse::<Category>().unwrap_err();
        assert_eq!(err.kind, "dispute category");
        assert!(err.known.contains("neighbour"));
        assert_eq!(Risk::Major.label_zh(), "重大");
    }

    #[test]
    fn a_dispute_carries_none_of_a_petitions_fields() {
        let petition_only = [
            Matter {
                petition_type: Some(PetitionType::ALL[0]),
                ..Matter::default()
            },
            Matter {
                collective: true,
                ..Matter::default()
            },
            Matter {
                skip_level: true,
                ..Matter::default()
            },
        ];
        for matter in &petition_only {
            assert!(matter.check_for(Kind::Petition).is_ok());
            let err = matter.check_for(Kind::Case).unwrap_err();
            assert!(matches!(err, FieldError::PetitionOnly { .. }), "{err:?}");
        }
        let dispute = Matter {
            source: Some(Source::ALL[0]),
            place: "田坝组".into(),
            amount_yuan: Some(3_000),
            people: Some(2),
            ..Matter::default()
        };
        assert!(dispute.check_for(Kind::Case).is_ok());
        let too_many = Matter {
            people: Some(PEOPLE_MAX + 1),
            ..dispute
        };
        assert!(matches!(
            too_many.check_for(Kind::Case),
            Err(FieldError::Range { .. })
        ));
    }

    #[test]
    fn text_bounds_are_checked() {
        assert!(check_text("note", "", 10, false).is_ok());
        assert_eq!(
            check_text("name", "  ", 10, true),
            Err(FieldError::Empty { field: "name" })
        );
        assert!(matches!(
            check_text("name", "调解调解调解", 5, true),
            Err(FieldError::TooLong { len: 6, .. })
        ));
    }
}

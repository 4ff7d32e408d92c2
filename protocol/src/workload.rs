//! Realistic, seeded work for tests and the simulator: new records and the next thing a
//! village worker might record on one. All choices come from the caller's randomness, so a
//! seed replays the same work.

use rand_core::RngCore;

use crate::division::VillageCode;
use crate::event::EventType;
use crate::event::{
    Agreement, AgreementForm, Amend, Assign, Body, Change, Court, Extend, Note, Outcome,
    ProtectionRequest, Refer, ReferLevel, Review, Satisfaction, Session,
};
use crate::fold::{Fold, pending};
use crate::id::StaffId;
use crate::model::{Category, Channel, Kind, Party, PartyRole, Risk};
use crate::record::{Command, NewRecord};
use crate::workflow::{ALL_EVENT_TYPES, Status, transition};

const SURNAMES: &[&str] = &["谭", "冉", "马", "陈", "秦", "向", "黄", "刘", "王", "李"];
const GIVEN: &[&str] = &[
    "德明", "小红", "光荣", "春梅", "大勇", "金凤", "国富", "玉兰",
];
const SUMMARIES: &[&str] = &[
    "两户因宅基地界线发生争执，要求村调解委员会调解。",
    "邻里因排水沟堵塞引发纠纷，双方多次争吵。",
    "承包山林边界不清，双方对林木归属有异议。",
    "务工人员被拖欠工资，要求包工头支付。",
    "夫妻因赡养老人问题产生矛盾，请求调解。",
    "道路交通事故赔偿金额双方未达成一致。",
];
/// What a matter of each category is about, as a village worker would write it down: the
/// summary fits the category.
fn summaries(category: Category, kind: Kind) -> &'static [&'static str] {
    if kind == Kind::Petition {
        return match category {
            Category::LandRequisition => &[
                "反映征地补偿款未按时足额发放，要求核实兑现。",
                "对房屋拆迁安置面积认定有异议，请求复核。",
            ],
            Category::Labour => &["反映在本地工地务工被拖欠工资，多次讨要未果，请求协调。"],
            Category::Pollution => &["反映养殖场污水直排溪沟，影响下游饮水，请求查处。"],
            _ => &[
                "反映村务公开不及时，对集体资金使用有疑问，请求公开账目。",
                "反映低保评定不公，请求重新评议。",
            ],
        };
    }
    match category {
        Category::MarriageFamily => &[
            "夫妻因赡养老人问题产生矛盾，请求调解。",
            "兄弟三人对父母赡养费分担意见不一。",
        ],
        Category::Neighbour => &[
            "邻里因排水沟堵塞引发纠纷，双方多次争吵。",
            "两户因院坝晾晒占道发生口角。",
        ],
        Category::HousingHomestead => &[
            "两户因宅基地界线发生争执，要求村调解委员会调解。",
            "建房滴水檐伸入邻户宅基地，双方争执。",
        ],
        Category::ForestLand => &[
            "承包山林边界不清，双方对林木归属有异议。",
            "承包地流转到期后对青苗补偿有争议。",
        ],
        Category::Contract => &[
            "购买化肥后未付尾款，双方对欠款数额有争议。",
            "房屋装修完工后对工程款结算有分歧。",
        ],
        Category::ProductionBusiness => &[
            "合伙养殖黄连分红比例产生争议。",
            "农家乐合伙经营亏损，双方对分担有分歧。",
        ],
        Category::DamageCompensation => &[
            "耕牛践踏邻户玉米地，双方对赔偿数额有分歧。",
            "放火烧荒引燃邻户柴堆，请求赔偿损失。",
        ],
        Category::Labour => &[
            "务工人员被拖欠工资，要求包工头支付。",
            "在采石场务工受伤，对工伤费用承担有争议。",
        ],
        Category::LandRequisition => &[
            "修建乡村公路占用承包地，对补偿分配有异议。",
            "拆迁安置房分配顺序引发邻户争执。",
        ],
        Category::Pollution => &[
            "生猪养殖场气味和污水影响周边住户，双方争执。",
            "碾米作坊噪声扰民，邻户要求停止夜间作业。",
        ],
        Category::Medical => &[
            "在村卫生室输液后出现不良反应，家属要求赔偿。",
            "对乡镇卫生院诊疗费用及后果有争议。",
        ],
        Category::Traffic => &[
            "道路交通事故赔偿金额双方未达成一致。",
            "摩托车与三轮车在村道相撞，对责任划分有争议。",
        ],
        Category::Other => &["因借用农具未归还发生争执。", "红白喜事借用场地引发矛盾。"],
    }
}

const PLACES: &[&str] = &["村贵和工作室", "村委会会议室", "当事人家中", "田间现场"];
const STAFF: &[&str] = &["tan.dm", "ran.xh", "ma.gr", "chen.cm"];

fn pick<'a, T>(rng: &mut dyn RngCore, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        return None;
    }
    let i = (rng.next_u32() as usize) % items.len();
    items.get(i)
}

fn text(rng: &mut dyn RngCore, items: &[&str]) -> String {
    pick(rng, items).copied().unwrap_or("").to_string()
}

fn person(rng: &mut dyn RngCore) -> String {
    format!("{}{}", text(rng, SURNAMES), text(rng, GIVEN))
}

fn chance(rng: &mut dyn RngCore, percent: u32) -> bool {
    rng.next_u32() % 100 < percent
}

/// A new record of `kind` belonging to `villages`.
pub fn new_record(rng: &mut dyn RngCore, kind: Kind, villages: &[VillageCode]) -> NewRecord {
    let category = pick(rng, Category::ALL).copied().unwrap_or(Category::Other);
    let risk = match rng.next_u32() % 100 {
        0..=84 => Risk::General,
        85..=97 => Risk::Significant,
        _ => Risk::Major,
    };
    let mut parties = vec![Party {
        name: person(rng),
        role: if kind == Kind::Case {
            PartyRole::Applicant
        } else {
            PartyRole::Petitioner
        },
        minor: false,
        contact: None,
        details: None,
    }];
    if kind == Kind::Case {
        // Two people, never one person twice: a same name takes the next given name.
        let mut name = person(rng);
        if parties.iter().any(|p| p.name == name) {
            let surname: String = name.chars().take(1).collect();
            let at = GIVEN
                .iter()
                .position(|g| name.ends_with(g))
                .map_or(0, |i| (i + 1) % GIVEN.len());
            name = format!("{surname}{}", GIVEN.get(at).copied().unwrap_or("德明"));
        }
        parties.push(Party {
            name,
            role: PartyRole::Respondent,
            minor: chance(rng, 3),
            contact: None,
            details: None,
        });
    }
    NewRecord {
        kind,
        jurisdictions: villages.to_vec(),
        received_ms: None,
        category,
        risk,
        channel: (kind == Kind::Petition)
            .then(|| pick(rng, Channel::ALL).copied().unwrap_or(Channel::Visit)),
        restricted: false,
        parties,
        summary: text(rng, summaries(category, kind)),
        note: String::new(),
        matter: None,
    }
}

const ETHNICITIES: &[&str] = &["土家族", "土家族", "土家族", "汉族", "汉族", "苗族"];
const OCCUPATIONS: &[&str] = &["农民", "农民", "个体经营", "务工", "退休教师", "村民小组长"];
const GROUPS: &[&str] = &["一组", "二组", "三组", "四组", "五组", "六组"];

/// A plausible ID number for a person of `age` born in Shizhu (area code 500240), with its
/// check character computed as GB 11643 says, so it reads like a real one.
fn id_number(rng: &mut dyn RngCore, age: u8, female: bool) -> String {
    let year = 2026 - u32::from(age);
    let month = 1 + rng.next_u32() % 12;
    let day = 1 + rng.next_u32() % 28;
    let order = (rng.next_u32() % 500) * 2 + u32::from(!female);
    let body = format!("500240{year:04}{month:02}{day:02}{order:03}");
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"
        .get((sum % 11) as usize)
        .copied()
        .map_or('0', char::from);
    format!("{body}{check}")
}

/// Fills in what a schema 2 intake takes (see `record::SCHEMA_VERSION`): each party's
/// particulars and phone, and the matter's source, place, amount and people, as an office
/// in Shizhu would write them. The simulator's workload stays at schema 1.
pub fn with_particulars(rng: &mut dyn RngCore, new: &mut NewRecord, village: &str) {
    for party in &mut new.parties {
        let age = if party.minor {
            10 + (rng.next_u32() % 7) as u8
        } else {
            24 + (rng.next_u32() % 52) as u8
        };
        let female = chance(rng, 45);
        party.contact = Some(format!(
            "1{}{:09}",
            pick(rng, &[3, 5, 8]).copied().unwrap_or(3),
            rng.next_u32() % 1_000_000_000
        ));
        party.details = Some(crate::model::Particulars {
            sex: Some(if female {
                crate::model::Sex::Female
            } else {
                crate::model::Sex::Male
            }),
            age: Some(age),
            ethnicity: text(rng, ETHNICITIES),
            occupation: if party.minor {
                "学生".into()
            } else {
                text(rng, OCCUPATIONS)
            },
            address: format!("石柱土家族自治县{village}{}", text(rng, GROUPS)),
            id_number: if party.minor {
                String::new()
            } else {
                id_number(rng, age, female)
            },
        });
    }
    let sources = crate::model::Source::ALL;
    new.matter = Some(crate::model::Matter {
        source: pick(rng, sources).copied(),
        place: format!("{village}{}", text(rng, GROUPS)),
        amount_yuan: chance(rng, 60).then(|| u64::from(rng.next_u32() % 200 + 1) * 500),
        people: Some(new.parties.len() as u32 + rng.next_u32() % 3),
        petition_type: (new.kind == Kind::Petition)
            .then(|| pick(rng, crate::model::PetitionType::ALL).copied())
            .flatten(),
        collective: new.kind == Kind::Petition && chance(rng, 5),
        skip_level: new.kind == Kind::Petition && chance(rng, 5),
    });
}

/// The event types that the rules allow next on a record in the state `fold`.
pub fn candidates(fold: &Fold) -> Vec<EventType> {
    ALL_EVENT_TYPES
        .iter()
        .copied()
        .filter(|ty| transition(fold.kind, fold.status, *ty).is_some())
        // The simulated workload writes record schema 1 (see `with_particulars`).
        .filter(|ty| crate::workflow::schema_of(fold.kind, *ty) == 1)
        .filter(|ty| match ty {
            EventType::JudicialRequest => fold.agreement.is_some() && !pending(&fold.judicial),
            EventType::JudicialResult => pending(&fold.judicial),
            EventType::ProtectionRequest => !pending(&fold.protection),
            EventType::ProtectionResult => pending(&fold.protection),
            EventType::Extend => fold.extension_days.is_none(),
            EventType::ReexamRequest => fold.reexam_requested_ms.is_none(),
            EventType::Review => fold.needs_review(),
            _ => true,
        })
        .collect()
}

/// A command a worker might record next on a record in the state `fold`, or `None` when
/// nothing is left to do.
pub fn next_command(rng: &mut dyn RngCore, fold: &Fold) -> Option<Command> {
    if chance(rng, 5) {
        return Some(Command::EditSummary {
            text: format!("{}（补充：{}）", text(rng, SUMMARIES), person(rng)),
            reason: "补充情况".into(),
        });
    }
    let types = candidates(fold);
    // Amend is always allowed; prefer progress so cases move through their life.
    let progress: Vec<EventType> = types
        .iter()
        .copied()
        .filter(|t| *t != EventType::Amend)
        .collect();
    let ty = if progress.is_empty() || chance(rng, 5) {
        EventType::Amend
    } else {
        pick_weighted(rng, &progress)?
    };
    let note = |rng: &mut dyn RngCore, notes: &[&str]| Note {
        note: text(rng, notes),
    };
    let staff = |rng: &mut dyn RngCore| -> StaffId {
        text(rng, STAFF)
            .parse()
            .unwrap_or_else(|_| StaffId::from_str_unchecked("worker"))
    };
    let body = match ty {
        EventType::Intake => return None,
        EventType::Accept => Body::Accept(crate::event::Acceptance {
            note: text(
                rng,
                &[
                    "经审查，属于受理范围，予以受理。",
                    "当事人申请调解，双方同意，予以受理。",
                ],
            ),
            number: None,
        }),
        EventType::NotAccept => Body::NotAccept(Note {
            note: "不属于信访事项受理范围".into(),
        }),
        EventType::Assign => Body::Assign(Assign {
            to: staff(rng),
            note: String::new(),
        }),
        EventType::Session => Body::Session(Session {
            place: text(rng, PLACES),
            note: "双方陈述意见，调解员释法说理。".into(),
        }),
        EventType::Agreement => Body::Agreement(Agreement {
            form: if chance(rng, 80) {
                AgreementForm::Written
            } else {
                AgreementForm::Oral
            },
            terms: "双方同意按协议履行，互不追究。".into(),
            seek_confirmation: chance(rng, 30),
        }),
        EventType::JudicialRequest => Body::JudicialRequest(Court {
            court: "石柱土家族自治县人民法院".into(),
            note: String::new(),
        }),
        EventType::JudicialResult | EventType::ProtectionResult => {
            let outcome = Outcome {
                granted: chance(rng, 90),
                note: "裁定书已送达".into(),
            };
            if ty == EventType::JudicialResult {
                Body::JudicialResult(outcome)
            } else {
                Body::ProtectionResult(outcome)
            }
        }
        EventType::ProtectionRequest => Body::ProtectionRequest(ProtectionRequest {
            court: "石柱土家族自治县人民法院".into(),
            urgent: chance(rng, 30),
            note: String::new(),
        }),
        EventType::Refer => Body::Refer(Refer {
            level: if chance(rng, 80) {
                ReferLevel::Township
            } else {
                ReferLevel::Court
            },
            to: "乡镇综治中心".into(),
            reason: "村级调解未果，上报乡镇".into(),
        }),
        EventType::Resolve => Body::Resolve(note(
            rng,
            &[
                "经调解双方和好，申请人撤回申请。",
                "双方当场握手言和，未签书面协议。",
            ],
        )),
        EventType::Fail => Body::Fail(Note {
            note: "双方分歧较大".into(),
        }),
        EventType::Extend => Body::Extend(Extend {
            days: 1 + rng.next_u32() % 30,
            reason: "情况复杂，需进一步调查".into(),
        }),
        EventType::Reply => Body::Reply(Note {
            note: "已书面答复信访人".into(),
        }),
        EventType::ReexamRequest => {
            Body::ReexamRequest(note(rng, &["信访人对答复意见不服，申请复查。"]))
        }
        EventType::ReexamAnswer => Body::ReexamAnswer(Note {
            note: "维持原处理意见".into(),
        }),
        EventType::Receive => Body::Receive(crate::event::Acceptance {
            note: "乡镇调解委员会接收，继续调解。".into(),
            number: None,
        }),
        EventType::RecheckRequest => {
            Body::RecheckRequest(note(rng, &["信访人对复查意见不服，请求上一级复核。"]))
        }
        EventType::RecheckAnswer => Body::RecheckAnswer(Note {
            note: "复核维持复查意见".into(),
        }),
        EventType::FollowUp => Body::FollowUp(Note {
            note: "回访当事人，协议履行良好".into(),
        }),
        EventType::Satisfaction => Body::Satisfaction(Satisfaction {
            rating: 1 + (rng.next_u32() % 5) as u8,
            note: String::new(),
        }),
        EventType::Close => Body::Close(note(
            rng,
            &["协议已履行完毕，予以结案。", "经回访无新情况，予以结案。"],
        )),
        EventType::Reopen => Body::Reopen(Note {
            note: "当事人反悔，重新调解".into(),
        }),
        EventType::Amend => Body::Amend(Amend {
            target: None,
            change: if chance(rng, 50) {
                Change::Risk(pick(rng, Risk::ALL).copied().unwrap_or(Risk::General))
            } else {
                Change::Category(pick(rng, Category::ALL).copied().unwrap_or(Category::Other))
            },
            reason: "登记有误，予以更正".into(),
        }),
        EventType::Review => Body::Review(Review {
            outcome: pick(rng, &review_outcomes(fold.kind)).copied(),
            note: "经乡镇审核，确认处理结果".into(),
        }),
    };
    Some(Command::Event { at_ms: None, body })
}

/// How often a worker records each type when it is allowed. Most disputes are settled in
/// the village (the county reports 99.42%), so mediation and settlement dominate, while
/// referral, failure and reopening are rare.
fn weight(ty: EventType) -> u32 {
    match ty {
        EventType::Accept | EventType::Review => 50,
        EventType::Session | EventType::Reply | EventType::FollowUp => 30,
        EventType::Agreement | EventType::Close => 25,
        EventType::Satisfaction => 20,
        EventType::Resolve | EventType::Assign | EventType::JudicialRequest => 10,
        EventType::JudicialResult | EventType::ProtectionResult | EventType::ReexamAnswer => 10,
        EventType::Extend | EventType::ReexamRequest | EventType::RecheckRequest => 4,
        EventType::Receive | EventType::RecheckAnswer => 10,
        EventType::Refer | EventType::Fail | EventType::NotAccept => 3,
        EventType::ProtectionRequest | EventType::Reopen => 2,
        EventType::Amend => 1,
        EventType::Intake => 0,
    }
}

fn pick_weighted(rng: &mut dyn RngCore, types: &[EventType]) -> Option<EventType> {
    let total: u32 = types.iter().map(|t| weight(*t)).sum();
    if total == 0 {
        return None;
    }
    let mut roll = rng.next_u32() % total;
    for ty in types {
        let w = weight(*ty);
        if roll < w {
            return Some(*ty);
        }
        roll -= w;
    }
    None
}

fn review_outcomes(kind: Kind) -> Vec<Status> {
    Status::ALL
        .iter()
        .copied()
        .filter(|s| s.applies_to(kind))
        // The simulated workload writes record schema 1.
        .filter(|s| crate::workflow::status_schema(kind, *s) == 1)
        .collect()
}

/// A village's history, for the ingest benchmarks: a village node (certified by a root
/// made here, valid for all time) that wrote `cases` records, one in five a petition, with
/// zero to five entries each, a minute apart from `start_ms` on. Returns its changes in the
/// order a session sends them, and its identity; `None` if a command failed.
pub fn village_history(
    rng: &mut dyn RngCore,
    cases: usize,
    start_ms: u64,
) -> Option<(Vec<crate::store::StoredChange>, crate::cert::Identity)> {
    use crate::cert::{CertBody, Identity, Keypair, Role, Root};
    use crate::store::{MemStore, Store};
    let root = Root::new(Keypair::generate(rng));
    let key = Keypair::generate(rng);
    let village: VillageCode = "500240101201".parse().ok()?;
    let cert = root
        .issue(CertBody {
            serial: 1,
            node: key.public(),
            role: Role::Village,
            division: crate::division::Division::Village(village),
            not_before_ms: 0,
            not_after_ms: u64::MAX,
        })
        .ok()?;
    let identity = Identity { key, cert };
    let mut replica =
        crate::replica::Replica::new(identity.clone(), MemStore::new(), "bench".parse().ok()?, 1);
    let rules = crate::deadline::Deadlines::default();
    let mut now = start_ms;
    for i in 0..cases {
        now += 60_000;
        let kind = if i % 5 == 4 {
            Kind::Petition
        } else {
            Kind::Case
        };
        let new = new_record(rng, kind, &[village]);
        let (id, _) = replica.create(now, rng, &rules, new).ok()?;
        for _ in 0..(i % 6) {
            now += 60_000;
            let fold = replica.record(id).ok()?.fold(&rules).ok()?;
            let Some(command) = next_command(rng, &fold) else {
                break;
            };
            if replica.apply(id, now, rng, &rules, command).is_err() {
                break;
            }
        }
    }
    let keys = replica
        .store
        .keys(crate::division::Division::Village(village), &|_| true)
        .ok()?;
    let changes = keys
        .iter()
        .filter_map(|(_, h)| replica.store.change(h).ok().flatten())
        .collect();
    Some((changes, identity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    /// The work reads like real cases: a summary of the category chosen, and two
    /// different people on the two sides.
    #[test]
    fn a_new_record_has_a_summary_of_its_category_and_distinct_parties() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let village: VillageCode = "500240001201".parse().unwrap_or_else(|_| unreachable!());
        for i in 0..2_000 {
            let kind = if i % 5 == 4 {
                Kind::Petition
            } else {
                Kind::Case
            };
            let new = new_record(&mut rng, kind, &[village]);
            assert!(
                summaries(new.category, kind).contains(&new.summary.as_str()),
                "{:?}: {}",
                new.category,
                new.summary
            );
            if let [a, b] = new.parties.as_slice() {
                assert_ne!(a.name, b.name);
            }
        }
    }
}

//! Dashboard figures over a set of views: what the township and county dashboards show,
//! computed the same way wherever they are shown.
//!
//! The figures, as the county names them:
//! - **调解成功率** (dispute mediation success rate): disputes whose mediation ended in an
//!   agreement or a settlement (调解成功), over disputes whose mediation ended, in success
//!   or in 调解不成. How a matter ended is its last outcome (`Common::outcome`), not its
//!   status: a failed mediation that is followed up and closed is still a failure. A
//!   referral is no ended mediation here (it is counted where it is resolved), and an
//!   open dispute is not yet one. Petitions are never in it.
//! - **办结** (concluded): records no longer open, disputes and petitions alike.
//! - **化解层级** (where disputes were resolved, 矛盾不上交): each dispute whose mediation
//!   ended in success, at the level that resolved it: the village that took it in, or the
//!   township or county that took it on by referral (接收, record schema 2). A dispute
//!   referred to a court or another body and not taken back is **passed out** (移出).
//!   (A dispute taken in at a township's own office counts as the village's it belongs
//!   to: the record does not say which office took it in.)
//! - **回访率** (follow-up rate, per office): disputes mediated with success that were
//!   followed up (回访) at least once, over disputes mediated with success.
//! - **满意度** (average satisfaction, per office): the mean of each record's latest rating
//!   (1 to 5), over the records rated, disputes and petitions alike.
//! - **调解协议** (agreements): disputes holding an agreement, written (书面) or oral (口头).
//! - **司法确认** (judicial confirmations): disputes whose confirmation was applied for, and
//!   those the court granted. **人身安全保护令** (protection orders): records where one was
//!   applied for, and those the court issued.
//! - **涉及金额 / 涉及人数** (amount at stake, people involved): sums over the records that
//!   state them (record schema 2), with how many do.
//! - **信访** (petitions): by channel, by type (record schema 2), and how many were
//!   collective (集体访) or skipped a level (越级访): the visits a 三无 county counts.
//! - **A period** (month, quarter, year, or since a date) holds the records received in it
//!   (by their date received, Beijing time); beside it, the same period a year earlier.
//!
//! A figure counts every record, restricted ones included; lists name records only by id,
//! so a restricted record is never shown by name here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::division::Division;
use crate::event::AgreementForm;
use crate::id::RecordId;
use crate::model::{Category, Channel, Kind, PetitionType, Risk};
use crate::view::View;
use crate::workflow::Status;

crate::model::coded!(
    /// The level that resolved a dispute (化解层级).
    ResolvedAt, "level", {
        /// 村（社区）.
        Village = "village", "村级", "village";
        /// 乡镇（街道）.
        Township = "township", "乡镇级", "township";
        /// 县级.
        County = "county", "县级", "county";
        /// 人民法院.
        Court = "court", "法院", "court";
        /// Another mediation organisation or body.
        Other = "other", "其他组织", "other body";
    }
);

impl ResolvedAt {
    fn of(taken_on_at: Option<crate::event::ReferLevel>) -> ResolvedAt {
        use crate::event::ReferLevel as L;
        match taken_on_at {
            None => ResolvedAt::Village,
            Some(L::Township) => ResolvedAt::Township,
            Some(L::County) => ResolvedAt::County,
            Some(L::Court) => ResolvedAt::Court,
            Some(L::Organisation) => ResolvedAt::Other,
        }
    }
}

/// The span the figures cover: records received from `from_ms` up to, not including,
/// `to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// The first moment in it (00:00 Beijing time of its first day).
    pub from_ms: u64,
    /// The first moment after it.
    pub to_ms: u64,
}

/// 00:00 Beijing time of a civil date; a day past the month's end (29 February of a
/// common year) is its last day.
fn day_start(year: i64, month: u8, day: u8) -> Option<u64> {
    let month = time::Month::try_from(month).ok()?;
    let year = i32::try_from(year).ok()?;
    let last = time::util::days_in_month(month, year);
    let date = time::Date::from_calendar_date(year, month, day.min(last)).ok()?;
    let start = date
        .midnight()
        .assume_offset(time::macros::offset!(+8))
        .unix_timestamp();
    u64::try_from(start).ok().map(|s| s * 1_000)
}

impl Period {
    /// Whether a time lies in it.
    pub fn contains(&self, ms: u64) -> bool {
        (self.from_ms..self.to_ms).contains(&ms)
    }

    /// A period as a dashboard names it: `2026-11` (a month), `2026-Q3` (a quarter),
    /// `2026` (a year), or `2018-01-01..` (since a day, up to `now_ms`). `None` if it is
    /// none of these, or ends before it begins.
    pub fn parse(text: &str, now_ms: u64) -> Option<Period> {
        let text = text.trim();
        let period = if let Some(since) = text.strip_suffix("..") {
            Period {
                from_ms: parse_date(since)?,
                to_ms: now_ms.saturating_add(1),
            }
        } else if let Some((year, q)) = text.split_once("-Q") {
            let (year, q): (i64, u8) = (year.parse().ok()?, q.parse().ok()?);
            if !(1..=4).contains(&q) {
                return None;
            }
            let first = (q - 1) * 3 + 1;
            Period {
                from_ms: day_start(year, first, 1)?,
                to_ms: if q == 4 {
                    day_start(year + 1, 1, 1)?
                } else {
                    day_start(year, first + 3, 1)?
                },
            }
        } else if let Some((year, month)) = text.split_once('-') {
            if month.len() > 2 {
                return None;
            }
            let (year, month): (i64, u8) = (year.parse().ok()?, month.parse().ok()?);
            if !(1..=12).contains(&month) {
                return None;
            }
            Period {
                from_ms: day_start(year, month, 1)?,
                to_ms: if month == 12 {
                    day_start(year + 1, 1, 1)?
                } else {
                    day_start(year, month + 1, 1)?
                },
            }
        } else {
            let year: i64 = text.parse().ok()?;
            Period {
                from_ms: day_start(year, 1, 1)?,
                to_ms: day_start(year + 1, 1, 1)?,
            }
        };
        (period.from_ms < period.to_ms).then_some(period)
    }

    /// The same period a year earlier (同期): the same days of the calendar, 29 February
    /// read as the 28th.
    pub fn a_year_earlier(&self) -> Option<Period> {
        let shift = |ms: u64| {
            let (y, m, d) = civil_date(ms);
            day_start(y - 1, u8::try_from(m).ok()?, u8::try_from(d).ok()?)
        };
        // The end is the first moment after the period: shift the day it ends on.
        Some(Period {
            from_ms: shift(self.from_ms)?,
            to_ms: shift(self.to_ms)?,
        })
    }
}

/// Beijing time, in which months begin.
const OFFSET_MS: i64 = 8 * 3_600_000;

/// The counts of one unit under the dashboard's division (a township under the county, a
/// village under a township).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// Records.
    pub records: usize,
    /// Records no longer open.
    pub concluded: usize,
    /// Disputes whose mediation ended in success (调解成功).
    pub resolved: usize,
    /// Disputes whose mediation ended, in success or not (调解成功 and 调解不成).
    #[serde(default)]
    pub mediated: usize,
    /// Open records with an overdue deadline.
    pub overdue: usize,
    /// Records that need review.
    pub needs_review: usize,
    /// Disputes mediated with success and followed up at least once (回访).
    #[serde(default)]
    pub followed_up: usize,
    /// Records rated for satisfaction.
    #[serde(default)]
    pub rated: usize,
    /// The sum of their latest ratings.
    #[serde(default)]
    pub rating_sum: u64,
}

impl Unit {
    /// 调解成功率: successful mediations over ended ones, disputes only (see the module).
    pub fn resolution_rate(&self) -> Option<f64> {
        (self.mediated > 0).then(|| self.resolved as f64 / self.mediated as f64)
    }

    /// 回访率: disputes mediated with success and followed up, over those mediated with
    /// success.
    pub fn follow_up_rate(&self) -> Option<f64> {
        (self.resolved > 0).then(|| self.followed_up as f64 / self.resolved as f64)
    }

    /// 满意度: the mean latest rating (1 to 5) over the records rated.
    pub fn satisfaction(&self) -> Option<f64> {
        (self.rated > 0).then(|| self.rating_sum as f64 / self.rated as f64)
    }

    fn add(&mut self, r: &Row, now_ms: u64) {
        self.records += 1;
        if !r.open {
            self.concluded += 1;
        }
        if r.mediated {
            self.mediated += 1;
            if r.resolved {
                self.resolved += 1;
                if r.followed_up {
                    self.followed_up += 1;
                }
            }
        }
        if let Some(rating) = r.satisfaction {
            self.rated += 1;
            self.rating_sum += u64::from(rating);
        }
        if r.overdue(now_ms) {
            self.overdue += 1;
        }
        if r.needs_review {
            self.needs_review += 1;
        }
    }
}

/// What the figures need of one record, kept small and flat so that a county's hundred
/// thousand rows are read in a few milliseconds. Built once per view, when the view
/// changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The record.
    pub id: RecordId,
    /// Its villages.
    pub jurisdictions: Vec<crate::division::VillageCode>,
    /// Case or petition.
    pub kind: Kind,
    /// Status.
    pub status: Status,
    /// Category.
    pub category: Category,
    /// Still open.
    pub open: bool,
    /// A dispute whose mediation ended in success (调解成功).
    pub resolved: bool,
    /// A dispute whose mediation ended, in success or not.
    #[serde(default)]
    pub mediated: bool,
    /// Referred up or elsewhere.
    pub referred: bool,
    /// Major risk.
    pub major: bool,
    /// Major risk, open, never passed up.
    pub major_unreported: bool,
    /// Needs review.
    pub needs_review: bool,
    /// When it was received.
    pub received_ms: u64,
    /// When it was resolved, if its mediation ended in success.
    pub resolved_ms: Option<u64>,
    /// The earliest due time of its unmet deadlines that can fall overdue.
    pub due_ms: Option<u64>,
    /// Where its mediation succeeded, if it is a dispute that did (化解层级).
    #[serde(default)]
    pub resolved_at: Option<ResolvedAt>,
    /// A dispute referred to a court or another body and not taken back (移出).
    #[serde(default)]
    pub passed_out: bool,
    /// Its agreement's form, if it holds one.
    #[serde(default)]
    pub agreement: Option<AgreementForm>,
    /// Judicial confirmation: `Some(granted)` once applied for.
    #[serde(default)]
    pub judicial: Option<bool>,
    /// A protection order: `Some(issued)` once applied for.
    #[serde(default)]
    pub protection: Option<bool>,
    /// Followed up at least once.
    #[serde(default)]
    pub followed_up: bool,
    /// Its latest satisfaction rating.
    #[serde(default)]
    pub satisfaction: Option<u8>,
    /// The amount at stake, in yuan, if stated.
    #[serde(default)]
    pub amount_yuan: Option<u64>,
    /// The people involved, if stated.
    #[serde(default)]
    pub people: Option<u32>,
    /// A petition's channel.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// A petition's type, if stated.
    #[serde(default)]
    pub petition_type: Option<PetitionType>,
    /// A collective visit (集体访).
    #[serde(default)]
    pub collective: bool,
    /// A visit that skipped a level (越级访).
    #[serde(default)]
    pub skip_level: bool,
}

impl Row {
    /// The row of a view.
    pub fn of(v: &View) -> Row {
        let c = v.common();
        let open = c.status.is_open();
        let dispute = v.kind() == Kind::Case;
        let resolved = dispute && c.outcome == Some(Status::Resolved);
        let decided = |court: &Option<crate::fold::CourtState>| {
            court
                .as_ref()
                .map(|c| c.decided.is_some_and(|(_, granted)| granted))
        };
        let (agreement, judicial, channel) = match v {
            View::Case(c) => (
                c.agreement.as_ref().map(|a| a.form),
                decided(&c.judicial),
                None,
            ),
            View::Petition(p) => (None, None, Some(p.channel)),
        };
        let matter = c.matter.as_ref();
        Row {
            agreement,
            judicial,
            protection: decided(&c.protection),
            followed_up: c.follow_ups > 0,
            satisfaction: c.satisfaction,
            amount_yuan: matter.and_then(|m| m.amount_yuan),
            people: matter.and_then(|m| m.people),
            channel,
            petition_type: matter.and_then(|m| m.petition_type),
            collective: matter.is_some_and(|m| m.collective),
            skip_level: matter.is_some_and(|m| m.skip_level),
            id: v.id(),
            jurisdictions: c.jurisdictions.clone(),
            kind: v.kind(),
            status: c.status,
            category: c.category,
            open,
            resolved,
            mediated: dispute && matches!(c.outcome, Some(Status::Resolved | Status::Failed)),
            referred: c.referral.is_some(),
            major: c.risk == Risk::Major,
            major_unreported: c.major_risk_unreported(),
            needs_review: c.needs_review,
            received_ms: c.received_ms,
            resolved_ms: c.resolved_ms.filter(|_| resolved),
            resolved_at: resolved.then(|| ResolvedAt::of(c.taken_on_at)),
            passed_out: dispute
                && c.outcome == Some(Status::Referred)
                && c.referral.as_ref().is_some_and(|r| {
                    matches!(
                        r.level,
                        crate::event::ReferLevel::Court | crate::event::ReferLevel::Organisation
                    )
                }),
            due_ms: c
                .deadlines
                .iter()
                // Overdue at a time later than the due time: exactly the deadlines
                // `Deadline::is_overdue` can ever report.
                .filter(|d| d.is_overdue(d.due_ms.saturating_add(1)))
                .map(|d| d.due_ms)
                .min(),
        }
    }

    /// Open with a deadline passed unmet at `now_ms`.
    pub fn overdue(&self, now_ms: u64) -> bool {
        self.open && self.due_ms.is_some_and(|due| now_ms > due)
    }
}

/// One month of the trend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Month {
    /// `YYYY-MM`, Beijing time.
    pub month: String,
    /// Records received in the month.
    pub received: usize,
    /// Records resolved in the month.
    pub resolved: usize,
}

/// The figures of a dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The division the figures cover.
    pub division: Option<Division>,
    /// Everything in it.
    pub total: Unit,
    /// Cases.
    pub cases: usize,
    /// Petitions.
    pub petitions: usize,
    /// Records per status.
    pub by_status: BTreeMap<Status, usize>,
    /// Records per category.
    pub by_category: BTreeMap<Category, usize>,
    /// Per unit one level down (townships of a county, villages of a township), by code.
    pub by_unit: BTreeMap<u64, Unit>,
    /// Petitions with an overdue deadline, by id.
    pub overdue_petitions: Vec<RecordId>,
    /// Records referred upward or to another body.
    pub escalations: usize,
    /// Open major-risk records, by id.
    pub major_risk_open: Vec<RecordId>,
    /// Major-risk records still open and never passed up, by id: the method says they go
    /// to the township at once.
    pub major_risk_unreported: Vec<RecordId>,
    /// Per month received, oldest first.
    pub monthly: Vec<Month>,
    /// Disputes resolved, by the level that resolved them (化解层级).
    #[serde(default)]
    pub by_level: BTreeMap<ResolvedAt, usize>,
    /// Disputes referred to a court or another body and not taken back (移出).
    #[serde(default)]
    pub passed_out: usize,
    /// The period the figures cover; `None` for every record held.
    #[serde(default)]
    pub period: Option<Period>,
    /// The same figures over the same period a year earlier (同期), when a period is set.
    #[serde(default)]
    pub a_year_earlier: Option<Box<Stats>>,
    /// The counts of agreements, court steps, amounts, people and petitions.
    #[serde(default)]
    pub counts: Counts,
}

/// The counts the county reports beside its rates (see the module for each definition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Disputes holding a written agreement (书面调解协议).
    pub agreements_written: usize,
    /// Disputes holding an oral agreement (口头协议).
    pub agreements_oral: usize,
    /// Disputes whose judicial confirmation was applied for.
    pub judicial_requested: usize,
    /// Of them, those the court granted.
    pub judicial_granted: usize,
    /// Records where a protection order was applied for.
    pub protection_requested: usize,
    /// Of them, those where the court issued it.
    pub protection_granted: usize,
    /// The amounts at stake, summed, in yuan.
    pub amount_yuan: u64,
    /// Records that state an amount.
    pub with_amount: usize,
    /// The people involved, summed.
    pub people: u64,
    /// Records that state how many people.
    pub with_people: usize,
    /// Petitions per channel.
    pub by_channel: BTreeMap<Channel, usize>,
    /// Petitions per type, where stated.
    pub by_petition_type: BTreeMap<PetitionType, usize>,
    /// Collective visits (集体访).
    pub collective: usize,
    /// Visits that skipped a level (越级访).
    pub skip_level: usize,
}

impl Counts {
    fn add(&mut self, r: &Row) {
        match r.agreement {
            Some(AgreementForm::Written) => self.agreements_written += 1,
            Some(AgreementForm::Oral) => self.agreements_oral += 1,
            None => {}
        }
        if let Some(granted) = r.judicial {
            self.judicial_requested += 1;
            self.judicial_granted += usize::from(granted);
        }
        if let Some(granted) = r.protection {
            self.protection_requested += 1;
            self.protection_granted += usize::from(granted);
        }
        if let Some(amount) = r.amount_yuan {
            self.amount_yuan = self.amount_yuan.saturating_add(amount);
            self.with_amount += 1;
        }
        if let Some(people) = r.people {
            self.people += u64::from(people);
            self.with_people += 1;
        }
        if let Some(channel) = r.channel {
            *self.by_channel.entry(channel).or_default() += 1;
        }
        if let Some(ty) = r.petition_type {
            *self.by_petition_type.entry(ty).or_default() += 1;
        }
        self.collective += usize::from(r.collective);
        self.skip_level += usize::from(r.skip_level);
    }
}

/// The unit one level below `division` that `village` is in.
fn unit_of(division: Division, village: crate::division::VillageCode) -> u64 {
    match division {
        Division::County(_) => village.township().as_u64(),
        Division::Township(_) | Division::Village(_) => village.as_u64(),
    }
}

/// `YYYY-MM` of a time, Beijing time.
pub fn month_of(ms: u64) -> String {
    let (year, month) = year_month(ms);
    format!("{year:04}-{month:02}")
}

/// The year and month of a time, Beijing time.
fn year_month(ms: u64) -> (i64, i64) {
    let (year, month, _) = civil_date(ms);
    (year, month)
}

/// The year of a time, Beijing time.
pub fn year_of(ms: u64) -> i64 {
    civil_date(ms).0
}

/// `YYYY-MM-DD` of a time, Beijing time.
pub fn date_of(ms: u64) -> String {
    let (y, m, d) = civil_date(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The start (00:00 Beijing time) of a day written `YYYY-MM-DD`, as a date input gives
/// it; `None` if it is not such a date or lies before 1970.
pub fn parse_date(text: &str) -> Option<u64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text.trim(), format).ok()?;
    let start = date
        .midnight()
        .assume_offset(time::macros::offset!(+8))
        .unix_timestamp();
    u64::try_from(start).ok()?.checked_mul(1_000)
}

/// The year, month and day of a time, Beijing time.
fn civil_date(ms: u64) -> (i64, i64, i64) {
    let local = i64::try_from(ms)
        .unwrap_or(i64::MAX)
        .saturating_add(OFFSET_MS);
    let days = local.div_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The figures over the views inside `division`, at `now_ms`.
pub fn compute<'a>(
    views: impl IntoIterator<Item = &'a View>,
    division: Division,
    now_ms: u64,
) -> Stats {
    let rows: Vec<Row> = views.into_iter().map(Row::of).collect();
    compute_rows(&rows, division, now_ms)
}

/// The figures over the rows inside `division` received in `period`, at `now_ms`, with
/// the same figures a year earlier beside them.
pub fn compute_period<'a>(
    rows: impl IntoIterator<Item = &'a Row> + Clone,
    division: Division,
    period: Period,
    now_ms: u64,
) -> Stats {
    let within = |p: Period| {
        rows.clone()
            .into_iter()
            .filter(move |r| p.contains(r.received_ms))
    };
    let mut stats = compute_rows(within(period), division, now_ms);
    stats.period = Some(period);
    stats.a_year_earlier = period.a_year_earlier().map(|earlier| {
        let mut before = compute_rows(within(earlier), division, now_ms);
        before.period = Some(earlier);
        Box::new(before)
    });
    stats
}

/// The figures over the rows inside `division`, at `now_ms`.
pub fn compute_rows<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    division: Division,
    now_ms: u64,
) -> Stats {
    let mut stats = Stats {
        division: Some(division),
        ..Stats::default()
    };
    let mut by_status: BTreeMap<Status, usize> = BTreeMap::new();
    let mut by_category: BTreeMap<Category, usize> = BTreeMap::new();
    // Keyed by (year, month) while counting; named once at the end.
    let mut months: BTreeMap<(i64, i64), (usize, usize)> = BTreeMap::new();
    let mut last_unit: Option<(u64, Unit)> = None;
    for r in rows {
        let Some(first) = r.jurisdictions.iter().find(|j| division.covers(**j)) else {
            continue;
        };
        stats.total.add(r, now_ms);
        stats.counts.add(r);
        // Rows of one unit tend to come together: keep the current unit at hand.
        let unit = unit_of(division, *first);
        match &mut last_unit {
            Some((code, u)) if *code == unit => u.add(r, now_ms),
            _ => {
                if let Some((code, u)) = last_unit.take() {
                    merge(stats.by_unit.entry(code).or_default(), &u);
                }
                let mut u = Unit::default();
                u.add(r, now_ms);
                last_unit = Some((unit, u));
            }
        }
        match r.kind {
            Kind::Case => stats.cases += 1,
            Kind::Petition => {
                stats.petitions += 1;
                if r.overdue(now_ms) {
                    stats.overdue_petitions.push(r.id);
                }
            }
        }
        *by_status.entry(r.status).or_default() += 1;
        *by_category.entry(r.category).or_default() += 1;
        if r.referred {
            stats.escalations += 1;
        }
        if r.major && r.open {
            stats.major_risk_open.push(r.id);
        }
        if r.major_unreported {
            stats.major_risk_unreported.push(r.id);
        }
        if let Some(level) = r.resolved_at {
            *stats.by_level.entry(level).or_default() += 1;
        }
        if r.passed_out {
            stats.passed_out += 1;
        }
        months.entry(year_month(r.received_ms)).or_default().0 += 1;
        if let Some(resolved) = r.resolved_ms {
            months.entry(year_month(resolved)).or_default().1 += 1;
        }
    }
    if let Some((code, u)) = last_unit {
        merge(stats.by_unit.entry(code).or_default(), &u);
    }
    stats.by_status = by_status;
    stats.by_category = by_category;
    stats.monthly = months
        .into_iter()
        .map(|((year, month), (received, resolved))| Month {
            month: format!("{year:04}-{month:02}"),
            received,
            resolved,
        })
        .collect();
    stats
}

fn merge(into: &mut Unit, from: &Unit) {
    into.records += from.records;
    into.concluded += from.concluded;
    into.resolved += from.resolved;
    into.mediated += from.mediated;
    into.overdue += from.overdue;
    into.needs_review += from.needs_review;
    into.followed_up += from.followed_up;
    into.rated += from.rated;
    into.rating_sum += from.rating_sum;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_begin_in_beijing_time() {
        // 2026-01-31T16:00:00Z is 2026-02-01 00:00 in Beijing.
        assert_eq!(month_of(1_769_875_200_000), "2026-02");
        assert_eq!(month_of(1_769_875_199_999), "2026-01");
        assert_eq!(month_of(0), "1970-01");
        // A leap day.
        assert_eq!(month_of(1_709_193_600_000), "2024-02");
        assert_eq!(date_of(1_709_193_600_000), "2024-02-29");
        assert_eq!(date_of(1_769_875_200_000), "2026-02-01");
    }

    #[test]
    fn a_period_is_a_month_a_quarter_a_year_or_since_a_day_and_has_its_year_earlier() {
        let now = parse_date("2026-12-01").unwrap_or(0) + 3_600_000;
        let p = |t| Period::parse(t, now);
        let day = |t| parse_date(t).unwrap_or(0);
        assert_eq!(
            p("2026-11"),
            Some(Period {
                from_ms: day("2026-11-01"),
                to_ms: day("2026-12-01")
            })
        );
        assert_eq!(
            p("2026-Q4"),
            Some(Period {
                from_ms: day("2026-10-01"),
                to_ms: day("2027-01-01")
            })
        );
        assert_eq!(
            p("2026"),
            Some(Period {
                from_ms: day("2026-01-01"),
                to_ms: day("2027-01-01")
            })
        );
        assert_eq!(
            p("2018-01-01.."),
            Some(Period {
                from_ms: day("2018-01-01"),
                to_ms: now + 1
            })
        );
        for bad in ["", "2026-13", "2026-Q5", "2026-011", "soon", "2027-01-01.."] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
        let q = p("2026-Q1").and_then(|q| q.a_year_earlier());
        assert_eq!(
            q,
            Some(Period {
                from_ms: day("2025-01-01"),
                to_ms: day("2025-04-01")
            })
        );
        // 29 February a year on is the 28th.
        let leap = p("2024-02-29..").and_then(|q| q.a_year_earlier());
        assert_eq!(leap.map(|q| q.from_ms), Some(day("2023-02-28")));
    }

    #[test]
    fn a_date_input_reads_as_the_start_of_that_day_in_beijing() {
        assert_eq!(parse_date("2026-02-01"), Some(1_769_875_200_000));
        assert_eq!(parse_date(" 2024-02-29 "), Some(1_709_136_000_000));
        assert_eq!(date_of(parse_date("2024-02-29").unwrap_or(0)), "2024-02-29");
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "26-02-01",
            "2026/02/01",
            "1969-12-31",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }
}

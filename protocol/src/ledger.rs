//! Paper and Excel ledgers (矛盾纠纷排查调处台账) read into records: the offices' history
//! from before the system.
//!
//! The driver reads the file (XLSX, or CSV saved by Excel on a Chinese PC) into a grid of
//! cells; this module finds the header (under a merged title row, over one or two lines),
//! maps each column to a field by its heading, reads every row into the record it describes
//! and the steps that took it to its outcome, and says what is wrong with each row it
//! cannot read, in Chinese. Nothing here writes: the driver writes the entries once the
//! worker confirms, and only when every row reads.
//!
//! An entry's record id is drawn from [`Entry::seed`], a hash of the importing office and
//! the row's contents: importing the same ledger twice yields the same ids, and the driver
//! creates nothing it already holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::division::VillageCode;
use crate::event::{Body, Note, Refer, ReferLevel, Session};
use crate::id::NodeId;
use crate::model::limits::{NAME_CHARS_MAX, NOTE_CHARS_MAX, PARTIES_MAX, SUMMARY_CHARS_MAX};
use crate::model::{Category, Kind, Matter, Party, PartyRole, Risk};
use crate::record::NewRecord;

/// One cell as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing.
    Empty,
    /// Text.
    Text(String),
    /// A number; a date formatted in Excel arrives as its serial day number.
    Number(f64),
}

impl Cell {
    /// The cell as text, trimmed ("" when empty; whole numbers without a decimal point).
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.trim().to_string(),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => n.to_string(),
        }
    }

    fn is_empty(&self) -> bool {
        self.text().is_empty()
    }
}

/// The fields a ledger's columns map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// 登记时间: when the dispute was taken in.
    Received,
    /// 当事人: names; a second column of them holds the other side.
    Parties,
    /// 纠纷类型.
    Category,
    /// 纠纷简要情况.
    Summary,
    /// 调处结果.
    Outcome,
    /// 调结时间: when it ended.
    Concluded,
    /// 调解员.
    Mediator,
    /// 发生地点.
    Place,
    /// 涉及金额 (yuan).
    Amount,
    /// 涉及人数.
    People,
    /// 村（社区）代码, when one ledger holds several villages.
    Village,
    /// 备注.
    Note,
}

impl Field {
    /// Every field, in the order the mapping page lists them.
    pub const ALL: &'static [Field] = &[
        Field::Received,
        Field::Parties,
        Field::Category,
        Field::Summary,
        Field::Outcome,
        Field::Concluded,
        Field::Mediator,
        Field::Place,
        Field::Amount,
        Field::People,
        Field::Village,
        Field::Note,
    ];

    /// The field's name in Chinese.
    pub fn label_zh(self) -> &'static str {
        match self {
            Field::Received => "登记时间",
            Field::Parties => "当事人",
            Field::Category => "纠纷类型",
            Field::Summary => "纠纷简要情况",
            Field::Outcome => "调处结果",
            Field::Concluded => "调结时间",
            Field::Mediator => "调解员",
            Field::Place => "发生地点",
            Field::Amount => "涉及金额",
            Field::People => "涉及人数",
            Field::Village => "村（社区）代码",
            Field::Note => "备注",
        }
    }

    /// The headings ledgers give the field.
    fn headings(self) -> &'static [&'static str] {
        match self {
            Field::Received => &[
                "登记时间",
                "登记日期",
                "受理时间",
                "受理日期",
                "排查时间",
                "排查日期",
                "发生时间",
                "日期",
                "时间",
            ],
            Field::Parties => &[
                "当事人",
                "当事人姓名",
                "双方当事人",
                "纠纷当事人",
                "申请人",
                "被申请人",
            ],
            Field::Category => &["纠纷类型", "纠纷类别", "类型", "类别", "纠纷种类"],
            Field::Summary => &[
                "纠纷简要情况",
                "矛盾纠纷简要情况",
                "简要情况",
                "基本情况",
                "主要事由",
                "纠纷事由",
                "事由",
                "主要内容",
            ],
            Field::Outcome => &[
                "调处结果",
                "调解结果",
                "处理结果",
                "化解情况",
                "调处情况",
                "结果",
            ],
            Field::Concluded => &[
                "调结时间",
                "调结日期",
                "结案时间",
                "结案日期",
                "办结时间",
                "化解时间",
            ],
            Field::Mediator => &["调解员", "调处人", "经办人", "责任人", "包案人"],
            Field::Place => &["发生地点", "地点"],
            Field::Amount => &["涉及金额", "金额", "标的额"],
            Field::People => &["涉及人数", "人数"],
            Field::Village => &["村代码", "村（社区）代码", "区划代码"],
            Field::Note => &["备注"],
        }
    }

    /// The field a heading names: an exact heading first, then the longest heading the
    /// text holds.
    pub fn guess(heading: &str) -> Option<Field> {
        let h = normalise(heading);
        if h.is_empty() {
            return None;
        }
        if let Some(f) = Field::ALL
            .iter()
            .find(|f| f.headings().iter().any(|k| normalise(k) == h))
        {
            return Some(*f);
        }
        Field::ALL
            .iter()
            .flat_map(|f| f.headings().iter().map(move |k| (*f, normalise(k))))
            .filter(|(_, k)| h.contains(k.as_str()))
            .max_by_key(|(_, k)| k.chars().count())
            .map(|(f, _)| f)
    }
}

/// A heading without spaces, line breaks or a unit in brackets.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '（' => depth += 1,
            ')' | '）' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() => {}
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Where the table sits in the sheet and what each column holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Index of the first data row.
    pub data_from: usize,
    /// Each column's heading (a two-line heading joined).
    pub headings: Vec<String>,
    /// Each column's field, if any.
    pub columns: Vec<Option<Field>>,
    /// A year the title names ("2023年…台账"), for dates written without one.
    pub year: Option<i32>,
}

impl Layout {
    /// Applies a saved mapping (heading → field, `None` to ignore the column): columns whose
    /// heading it names take its field.
    pub fn apply(&mut self, mapping: &BTreeMap<String, Option<Field>>) {
        for (heading, column) in self.headings.iter().zip(&mut self.columns) {
            if let Some(field) = mapping.get(heading) {
                *column = *field;
            }
        }
    }

    /// The mapping to save: every heading and its field.
    pub fn mapping(&self) -> BTreeMap<String, Option<Field>> {
        self.headings
            .iter()
            .cloned()
            .zip(self.columns.iter().copied())
            .filter(|(h, _)| !h.is_empty())
            .collect()
    }

    fn has(&self, field: Field) -> bool {
        self.columns.contains(&Some(field))
    }
}

/// How many rows from the top the header may start.
const HEADER_SEARCH_ROWS: usize = 12;

/// Finds the header: the row (within the first dozen) whose headings name the most fields,
/// joined with the line under it when that line is a second line of headings (under merged
/// cells). Rows above it are titles; a year in them dates rows that give none.
pub fn layout(rows: &[Vec<Cell>]) -> Result<Layout, Problem> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let text = |r: usize, c: usize| {
        rows.get(r)
            .and_then(|row| row.get(c))
            .map(Cell::text)
            .unwrap_or_default()
    };
    let mut best: Option<(usize, usize, bool)> = None;
    for r in 0..rows.len().min(HEADER_SEARCH_ROWS) {
        let top: Vec<String> = (0..width).map(|c| text(r, c)).collect();
        let bottom: Vec<String> = (0..width).map(|c| text(r + 1, c)).collect();
        let joined = join_headings(&top, &bottom);
        let second_line = bottom.iter().any(|b| Field::guess(b).is_some())
            && bottom
                .iter()
                .all(|b| date_of(&Cell::Text(b.clone()), None).is_err());
        let score_one = distinct_fields(&top);
        let score_two = if second_line {
            distinct_fields(&joined)
        } else {
            0
        };
        let (score, two) = if score_two > score_one {
            (score_two, true)
        } else {
            (score_one, false)
        };
        if score >= 3 && best.is_none_or(|(_, s, _)| score > s) {
            best = Some((r, score, two));
        }
    }
    let Some((r, _, two)) = best else {
        return Err(Problem::NoHeader);
    };
    let top: Vec<String> = (0..width).map(|c| text(r, c)).collect();
    let headings = if two {
        let bottom: Vec<String> = (0..width).map(|c| text(r + 1, c)).collect();
        join_headings(&top, &bottom)
    } else {
        top
    };
    let columns = headings
        .iter()
        .map(|h| {
            // A two-line heading names its field by its second line first.
            let second = h.rsplit_once('\u{1f}').map(|(_, b)| b);
            second
                .and_then(Field::guess)
                .or_else(|| Field::guess(&h.replace('\u{1f}', "")))
        })
        .collect();
    let headings: Vec<String> = headings.iter().map(|h| h.replace('\u{1f}', "")).collect();
    let year = (0..r)
        .flat_map(|t| (0..width).map(move |c| (t, c)))
        .find_map(|(t, c)| year_in(&text(t, c)));
    let layout = Layout {
        data_from: r + if two { 2 } else { 1 },
        headings,
        columns,
        year,
    };
    if !layout.has(Field::Received) || !layout.has(Field::Summary) {
        return Err(Problem::NoHeader);
    }
    Ok(layout)
}

/// Headings over two lines: a cell of the second line under a merged cell of the first
/// takes the merged cell's text before its own (joined by a unit separator, so the second
/// line can be read apart).
fn join_headings(top: &[String], bottom: &[String]) -> Vec<String> {
    let mut merged = String::new();
    top.iter()
        .zip(bottom)
        .map(|(t, b)| {
            if !t.is_empty() {
                merged = t.clone();
            }
            match (t.is_empty(), b.is_empty()) {
                (_, true) => t.clone(),
                (false, false) => format!("{t}\u{1f}{b}"),
                (true, false) => format!("{merged}\u{1f}{b}"),
            }
        })
        .collect()
}

fn distinct_fields(headings: &[String]) -> usize {
    let mut fields: Vec<Field> = headings
        .iter()
        .filter_map(|h| {
            h.rsplit_once('\u{1f}')
                .and_then(|(_, b)| Field::guess(b))
                .or_else(|| Field::guess(&h.replace('\u{1f}', "")))
        })
        .collect();
    fields.sort();
    fields.dedup();
    fields.len()
}

/// A year a title names: four digits from 2000 to 2099 followed by 年.
fn year_in(text: &str) -> Option<i32> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(5).find_map(|w| match w {
        [a, b, c, d, '年'] => [a, b, c, d]
            .iter()
            .map(|c| c.to_digit(10))
            .try_fold(0i32, |y, digit| Some(y * 10 + i32::try_from(digit?).ok()?))
            .filter(|y| (2000..2100).contains(y)),
        _ => None,
    })
}

/// Why a ledger or one of its rows cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// No row in the first dozen names the columns.
    #[error("no header row naming at least the date and the summary was found")]
    NoHeader,
    /// A date that does not read.
    #[error("{field}: {text:?} is not a date")]
    Date {
        /// The field.
        field: &'static str,
        /// What the cell holds.
        text: String,
    },
    /// A date with no year, in a ledger whose title names none.
    #[error("{field}: {text:?} has no year")]
    NoYear {
        /// The field.
        field: &'static str,
        /// What the cell holds.
        text: String,
    },
    /// A date after today.
    #[error("{field}: {text:?} is in the future")]
    Future {
        /// The field.
        field: &'static str,
        /// What the cell holds.
        text: String,
    },
    /// Ended before it was taken in.
    #[error("concluded before it was received")]
    EndsBeforeItBegins,
    /// A required field is empty.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A text longer than its bound.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The bound.
        max: usize,
    },
    /// Too many parties.
    #[error("more than {PARTIES_MAX} parties")]
    TooManyParties,
    /// An outcome that is none of the known ones.
    #[error("outcome {0:?} is not recognised")]
    Outcome(String),
    /// A number that does not read.
    #[error("{field}: {text:?} is not a whole number")]
    Number {
        /// The field.
        field: &'static str,
        /// What the cell holds.
        text: String,
    },
    /// A village code that does not read, or no village at all.
    #[error("village {0:?} is not a village code")]
    Village(String),
}

impl Problem {
    /// The problem in Chinese, naming what to fix.
    pub fn zh(&self) -> String {
        match self {
            Problem::NoHeader => "找不到表头：前12行中没有同时写明“登记时间”和“纠纷简要情况”（或相近名称）的一行。请检查表格，或在列对应中指定各列。".into(),
            Problem::Date { field, text } => format!("“{field}”写的是“{text}”，不是日期。可写作2023-05-06、2023.5.6或2023年5月6日。"),
            Problem::NoYear { field, text } => format!("“{field}”写的是“{text}”，没有年份，表格标题中也没有年份。请写明年份。"),
            Problem::Future { field, text } => format!("“{field}”写的是“{text}”，晚于今天。"),
            Problem::EndsBeforeItBegins => "调结时间早于登记时间。".into(),
            Problem::Empty { field } => format!("“{field}”没有填写。"),
            Problem::TooLong { field, max } => format!("“{field}”太长，最多{max}个字。"),
            Problem::TooManyParties => format!("当事人超过{PARTIES_MAX}人。"),
            Problem::Outcome(text) => format!("调处结果“{text}”无法识别，应为调解成功、调解不成、移交或在办之一。"),
            Problem::Number { field, text } => format!("“{field}”写的是“{text}”，应为整数。"),
            Problem::Village(text) if text.is_empty() => "没有注明村（社区）：请在村（社区）代码一列填写12位代码，或在本村的节点导入。".into(),
            Problem::Village(text) => format!("村（社区）代码“{text}”不对，应为12位区划代码。"),
        }
    }
}

/// A row that cannot be read: its line in the sheet (from 1, as Excel numbers it) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row's number in the sheet.
    pub line: usize,
    /// What is wrong.
    pub problem: Problem,
}

/// How the ledger says a dispute ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    /// Still being handled (在办), or nothing written.
    Open,
    /// 调解成功.
    Resolved,
    /// 调解不成.
    Failed,
    /// 移交 to a level or body.
    Referred(ReferLevel),
}

impl Ending {
    /// Reads an outcome as ledgers write it.
    pub fn parse(text: &str) -> Result<Ending, Problem> {
        let t = normalise(text);
        if t.is_empty()
            || ["在办", "调解中", "未结", "正在", "处理中", "跟踪"]
                .iter()
                .any(|k| t.contains(k))
        {
            return Ok(Ending::Open);
        }
        if ["不成", "未成", "失败", "未达成", "未化解", "未能", "无法"]
            .iter()
            .any(|k| t.contains(k))
        {
            return Ok(Ending::Failed);
        }
        if [
            "移交", "上交", "转交", "移送", "转办", "上报", "诉讼", "起诉",
        ]
        .iter()
        .any(|k| t.contains(k))
        {
            let level = if ["法院", "诉讼", "起诉"].iter().any(|k| t.contains(k)) {
                ReferLevel::Court
            } else if t.contains('县') {
                ReferLevel::County
            } else if ["派出所", "公安", "仲裁", "部门", "局"]
                .iter()
                .any(|k| t.contains(k))
            {
                ReferLevel::Organisation
            } else {
                ReferLevel::Township
            };
            return Ok(Ending::Referred(level));
        }
        if [
            "成功",
            "化解",
            "达成",
            "调结",
            "已调",
            "和解",
            "结案",
            "办结",
            "已解决",
            "解决",
        ]
        .iter()
        .any(|k| t.contains(k))
        {
            return Ok(Ending::Resolved);
        }
        Err(Problem::Outcome(text.trim().to_string()))
    }
}

/// A category as ledgers write it; what matches none is 其他.
pub fn category_of(text: &str) -> Category {
    let t = normalise(text);
    if let Some(c) = Category::ALL.iter().find(|c| c.label_zh() == t) {
        return *c;
    }
    const WORDS: &[(&str, Category)] = &[
        ("婚姻", Category::MarriageFamily),
        ("家庭", Category::MarriageFamily),
        ("赡养", Category::MarriageFamily),
        ("抚养", Category::MarriageFamily),
        ("继承", Category::MarriageFamily),
        ("邻里", Category::Neighbour),
        ("宅基地", Category::HousingHomestead),
        ("房屋", Category::HousingHomestead),
        ("山林", Category::ForestLand),
        ("林地", Category::ForestLand),
        ("林权", Category::ForestLand),
        ("土地", Category::ForestLand),
        ("征地", Category::LandRequisition),
        ("拆迁", Category::LandRequisition),
        ("合同", Category::Contract),
        ("借贷", Category::Contract),
        ("债务", Category::Contract),
        ("生产", Category::ProductionBusiness),
        ("经营", Category::ProductionBusiness),
        ("损害", Category::DamageCompensation),
        ("赔偿", Category::DamageCompensation),
        ("劳动", Category::Labour),
        ("劳资", Category::Labour),
        ("工资", Category::Labour),
        ("污染", Category::Pollution),
        ("环境", Category::Pollution),
        ("医疗", Category::Medical),
        ("交通", Category::Traffic),
    ];
    WORDS
        .iter()
        .find(|(w, _)| t.contains(w))
        .map_or(Category::Other, |(_, c)| *c)
}

/// A date as ledgers write it, as the start of that day in Beijing (ms since the epoch): an
/// Excel date, `2023-05-06`, `2023/5/6`, `2023.5.6`, `2023年5月6日`, `20230506`, or
/// `5月6日` / `5.6` with the year `year` (from the title, or the row above).
pub fn date_of(cell: &Cell, year: Option<i32>) -> Result<u64, Problem> {
    let bad = || Problem::Date {
        field: "",
        text: cell.text(),
    };
    let (y, m, d) = match cell {
        Cell::Empty => return Err(Problem::Empty { field: "" }),
        // An Excel serial day (the 1900 system; every date here is after its leap-year
        // slip), or a number written as 20230506.
        Cell::Number(n) if (20_000_101.0..21_000_000.0).contains(n) => {
            let n = *n as i64;
            (n / 10_000, (n / 100) % 100, n % 100)
        }
        Cell::Number(n) if (1.0..200_000.0).contains(n) => {
            let epoch = time::Date::from_calendar_date(1899, time::Month::December, 30)
                .map_err(|_| bad())?;
            let date = epoch
                .checked_add(time::Duration::days(n.floor() as i64))
                .ok_or_else(bad)?;
            (
                i64::from(date.year()),
                i64::from(u8::from(date.month())),
                i64::from(date.day()),
            )
        }
        Cell::Number(_) => return Err(bad()),
        Cell::Text(t) => {
            let runs: Vec<&str> = t
                .split(|c: char| !c.is_ascii_digit())
                .filter(|r| !r.is_empty())
                .collect();
            let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
            match runs.as_slice() {
                [one] if one.len() == 8 => {
                    let n = num(one)?;
                    (n / 10_000, (n / 100) % 100, n % 100)
                }
                [y, m, d, ..] if y.len() == 4 => (num(y)?, num(m)?, num(d)?),
                [y, m, d, ..] if y.len() == 2 => (2000 + num(y)?, num(m)?, num(d)?),
                [m, d] if m.len() <= 2 && d.len() <= 2 => {
                    let Some(year) = year else {
                        return Err(Problem::NoYear {
                            field: "",
                            text: t.trim().to_string(),
                        });
                    };
                    (i64::from(year), num(m)?, num(d)?)
                }
                _ => return Err(bad()),
            }
        }
    };
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let date = time::Date::from_calendar_date(
        i32::try_from(y).map_err(|_| bad())?,
        month,
        u8::try_from(d).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    if date.year() < 1990 {
        return Err(bad());
    }
    let start = date
        .midnight()
        .assume_offset(time::macros::offset!(+8))
        .unix_timestamp();
    u64::try_from(start)
        .ok()
        .and_then(|s| s.checked_mul(1_000))
        .ok_or_else(bad)
}

/// What a ledger is read for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The importing office's node: entries' ids are drawn from it.
    pub office: NodeId,
    /// The village the rows belong to when no column names one (a village office's own).
    pub village: Option<VillageCode>,
    /// Now: no date may be later than today.
    pub now_ms: u64,
    /// The record schema the office writes: the place, amount and people a ledger states
    /// are kept from schema 2 on.
    pub schema: u64,
}

/// One row read: the record it describes and the steps to its outcome.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The row's number in the sheet (from 1).
    pub line: usize,
    /// The record, dated as the ledger dates it.
    pub new: NewRecord,
    /// The steps, each at its date: accepted on the day received, then how it ended.
    pub steps: Vec<(u64, Body)>,
    /// How it ended.
    pub ending: Ending,
    /// The seed the record's ids are drawn from: the office and the row's contents.
    pub seed: [u8; 32],
}

/// A ledger read.
#[derive(Debug, Clone, Default)]
pub struct Read {
    /// The rows that read.
    pub entries: Vec<Entry>,
    /// The rows that did not, with why.
    pub errors: Vec<RowError>,
    /// Blank rows passed over.
    pub blank: usize,
    /// The line of the 合计 row that ended the table, if one did.
    pub total_row: Option<usize>,
}

/// Whether a row is the table's total (合计, 总计, 小计).
fn is_total(row: &[Cell]) -> bool {
    row.iter()
        .map(Cell::text)
        .filter(|t| !t.is_empty())
        .take(2)
        .any(|t| {
            let t = normalise(&t);
            t.starts_with("合计") || t.starts_with("总计") || t.starts_with("小计")
        })
}

/// Reads every row under the header. A row that cannot be read is an error with its line;
/// the others are entries. The table ends at a 合计 row or at the sheet's end.
pub fn read(rows: &[Vec<Cell>], layout: &Layout, options: &Options) -> Read {
    let mut out = Read::default();
    let mut year = layout.year;
    for (i, row) in rows.iter().enumerate().skip(layout.data_from) {
        let line = i + 1;
        if row.iter().all(Cell::is_empty) {
            out.blank += 1;
            continue;
        }
        if is_total(row) {
            out.total_row = Some(line);
            break;
        }
        match entry(row, line, layout, options, year) {
            Ok(e) => {
                year =
                    Some(crate::stats::year_of(e.new.received_ms.unwrap_or(options.now_ms)) as i32);
                out.entries.push(e);
            }
            Err(problem) => out.errors.push(RowError { line, problem }),
        }
    }
    out
}

fn entry(
    row: &[Cell],
    line: usize,
    layout: &Layout,
    options: &Options,
    year: Option<i32>,
) -> Result<Entry, Problem> {
    let cells = |field: Field| {
        layout
            .columns
            .iter()
            .enumerate()
            .filter(move |(_, f)| **f == Some(field))
            .map(|(c, _)| row.get(c).cloned().unwrap_or(Cell::Empty))
    };
    let first = |field: Field| cells(field).find(|c| !c.is_empty()).unwrap_or(Cell::Empty);
    let text = |field: Field| first(field).text();
    let dated = |field: Field, cell: &Cell| -> Result<u64, Problem> {
        let name = field.label_zh();
        let at = date_of(cell, year).map_err(|p| match p {
            Problem::Date { text, .. } => Problem::Date { field: name, text },
            Problem::NoYear { text, .. } => Problem::NoYear { field: name, text },
            Problem::Empty { .. } => Problem::Empty { field: name },
            other => other,
        })?;
        // Today's date is allowed whatever the hour.
        if at > options.now_ms.saturating_add(86_400_000) {
            return Err(Problem::Future {
                field: name,
                text: cell.text(),
            });
        }
        Ok(at)
    };
    let received_ms = dated(Field::Received, &first(Field::Received))?;

    // Parties: the first column's names apply, a later column's respond.
    let mut parties = Vec::new();
    let several = cells(Field::Parties).count() > 1;
    for (n, cell) in cells(Field::Parties).enumerate() {
        let names = cell.text();
        for (k, name) in names
            .split(['、', ',', '，', ';', '；', '/', '\n', ' ', '　'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            if name.chars().count() > NAME_CHARS_MAX {
                return Err(Problem::TooLong {
                    field: "当事人",
                    max: NAME_CHARS_MAX,
                });
            }
            let role = if (several && n == 0) || (!several && k == 0) {
                PartyRole::Applicant
            } else {
                PartyRole::Respondent
            };
            parties.push(Party {
                name: name.to_string(),
                role,
                minor: false,
                contact: None,
                details: None,
            });
        }
    }
    if parties.is_empty() {
        return Err(Problem::Empty { field: "当事人" });
    }
    if parties.len() > PARTIES_MAX {
        return Err(Problem::TooManyParties);
    }
    let summary = text(Field::Summary);
    if summary.is_empty() {
        return Err(Problem::Empty {
            field: "纠纷简要情况",
        });
    }
    if summary.chars().count() > SUMMARY_CHARS_MAX {
        return Err(Problem::TooLong {
            field: "纠纷简要情况",
            max: SUMMARY_CHARS_MAX,
        });
    }
    let outcome_text = text(Field::Outcome);
    let ending = Ending::parse(&outcome_text)?;
    let concluded = first(Field::Concluded);
    let concluded_ms = if concluded.is_empty() || ending == Ending::Open {
        received_ms
    } else {
        dated(Field::Concluded, &concluded)?
    };
    if concluded_ms < received_ms {
        return Err(Problem::EndsBeforeItBegins);
    }
    let village_text = text(Field::Village);
    let village = if village_text.is_empty() {
        options.village.ok_or(Problem::Village(String::new()))?
    } else {
        village_text
            .parse::<VillageCode>()
            .map_err(|_| Problem::Village(village_text.clone()))?
    };
    let whole = |field: Field| -> Result<Option<u64>, Problem> {
        let t = text(field).replace([',', '，', '元', '人'], "");
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0 && n.fract() == 0.0 && *n < 1e12)
            .map(|n| Some(n as u64))
            .ok_or(Problem::Number {
                field: field.label_zh(),
                text: text(field),
            })
    };
    let amount_yuan = whole(Field::Amount)?;
    let people = whole(Field::People)?.map(|p| u32::try_from(p).unwrap_or(u32::MAX));
    let place = text(Field::Place);
    let stated = amount_yuan.is_some() || people.is_some() || !place.is_empty();
    let matter = (stated && options.schema >= 2).then(|| Matter {
        place: place.chars().take(NAME_CHARS_MAX * 2).collect(),
        amount_yuan,
        people,
        ..Matter::default()
    });
    let mut note = format!("台账导入（第{line}行）");
    let mediator = text(Field::Mediator);
    if !mediator.is_empty() {
        note.push_str(&format!("；调解员：{mediator}"));
    }
    let remark = text(Field::Note);
    if !remark.is_empty() {
        note.push_str(&format!("；备注：{remark}"));
    }
    let note: String = note.chars().take(NOTE_CHARS_MAX).collect();
    let reason: String = if outcome_text.is_empty() {
        "台账记载".into()
    } else {
        outcome_text.chars().take(NOTE_CHARS_MAX).collect()
    };
    let mut steps = vec![(received_ms, Body::Accept(Default::default()))];
    match ending {
        Ending::Open => {}
        Ending::Resolved => steps.push((concluded_ms, Body::Resolve(Note { note: reason }))),
        Ending::Failed => {
            steps.push((
                concluded_ms,
                Body::Session(Session {
                    place: String::new(),
                    note: "台账记载的调解".into(),
                }),
            ));
            steps.push((concluded_ms, Body::Fail(Note { note: reason })));
        }
        Ending::Referred(level) => steps.push((
            concluded_ms,
            Body::Refer(Refer {
                level,
                to: reason.chars().take(NAME_CHARS_MAX * 2).collect(),
                reason: "台账记载".into(),
            }),
        )),
    }
    let mut hash = Sha256::new();
    hash.update(b"guihe-ledger-v1");
    hash.update(options.office.as_bytes());
    for cell in row {
        hash.update(cell.text().as_bytes());
        hash.update([0x1f]);
    }
    Ok(Entry {
        line,
        new: NewRecord {
            kind: Kind::Case,
            jurisdictions: vec![village],
            received_ms: Some(received_ms),
            category: category_of(&text(Field::Category)),
            risk: Risk::General,
            channel: None,
            restricted: false,
            parties,
            summary,
            note,
            matter,
        },
        steps,
        ending,
        seed: hash.finalize().into(),
    })
}

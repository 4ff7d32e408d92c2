//! Paper ledgers read into records: a merged title row, a two-line header, dates written
//! every way offices write them, blank rows and a 合计 row; bad rows refused one by one in
//! Chinese; every row that reads becomes a record the command path accepts, dated as the
//! ledger dates it; the same row at the same office always draws the same id.

mod common;

use common::*;
use guihe_protocol::id::NodeId;
use guihe_protocol::ledger::{Cell, Ending, Field, Options, Problem, layout, read};
use guihe_protocol::model::{Category, PartyRole};
use guihe_protocol::record::{Command, Record};
use guihe_protocol::stats::{Row, compute_rows, date_of, parse_date};
use guihe_protocol::workflow::Status;

fn t(s: &str) -> Cell {
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(s.into())
    }
}

/// 2023-05-06 as Excel stores it.
const SERIAL_2023_05_06: f64 = 45_052.0;

fn ledger() -> Vec<Vec<Cell>> {
    let row = |cells: &[&str]| cells.iter().map(|c| t(c)).collect::<Vec<_>>();
    let mut rows = vec![
        // A merged title, and a line of who kept it.
        row(&[
            "示例村2023年矛盾纠纷排查调处台账",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]),
        row(&[
            "填报单位：示例村人民调解委员会",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]),
        // Two lines of headings under merged cells.
        row(&[
            "序号",
            "登记\n时间",
            "当事人",
            "",
            "纠纷类型",
            "纠纷简要情况",
            "调处情况",
            "",
            "涉及金额（元）",
        ]),
        row(&["", "", "申请人", "被申请人", "", "", "结果", "调结时间", ""]),
    ];
    let mut excel = row(&[
        "1",
        "",
        "谭德明",
        "冉光荣",
        "邻里纠纷",
        "排水沟堵塞引发争执",
        "调解成功",
        "2023.5.8",
        "800",
    ]);
    excel[1] = Cell::Number(SERIAL_2023_05_06);
    rows.push(excel);
    rows.push(row(&[
        "2",
        "2023年6月1日",
        "马春梅",
        "马春林、马春华",
        "赡养",
        "兄妹三人对母亲赡养费分担有分歧",
        "调解不成",
        "2023年6月20日",
        "",
    ]));
    rows.push(row(&["", "", "", "", "", "", "", "", ""]));
    rows.push(row(&[
        "3",
        "7月3日",
        "冉秀英",
        "某建筑公司",
        "劳资纠纷",
        "务工工资拖欠",
        "移交县劳动仲裁",
        "7月10日",
        "12,000",
    ]));
    rows.push(row(&[
        "4",
        "2023-08-15",
        "向阳",
        "向东",
        "山林",
        "林地界址不清",
        "在办",
        "",
        "",
    ]));
    rows.push(row(&["合计", "", "", "", "", "", "", "", "12800"]));
    rows.push(row(&["制表人：谭德明", "", "", "", "", "", "", "", ""]));
    rows
}

fn options(office: u8) -> Options {
    Options {
        office: NodeId::from_bytes([office; 32]),
        village: Some(village(VILLAGE)),
        now_ms: T0 + 400 * DAY_MS,
        schema: 2,
    }
}

const VILLAGE: &str = "500240001201";

#[test]
fn a_messy_ledger_reads_its_header_dates_parties_and_outcomes() {
    let rows = ledger();
    let layout = layout(&rows).unwrap();
    assert_eq!(layout.data_from, 4, "under the two lines of headings");
    assert_eq!(layout.year, Some(2023), "from the title");
    assert_eq!(
        layout.columns,
        vec![
            None,
            Some(Field::Received),
            Some(Field::Parties),
            Some(Field::Parties),
            Some(Field::Category),
            Some(Field::Summary),
            Some(Field::Outcome),
            Some(Field::Concluded),
            Some(Field::Amount),
        ]
    );
    let got = read(&rows, &layout, &options(1));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.entries.len(), 4);
    assert_eq!((got.blank, got.total_row), (1, Some(10)));
    let day = |s| parse_date(s).unwrap();
    let e = &got.entries;
    assert_eq!(e[0].line, 5);
    assert_eq!(
        e[0].new.received_ms,
        Some(day("2023-05-06")),
        "an Excel date"
    );
    assert_eq!(e[1].new.received_ms, Some(day("2023-06-01")));
    assert_eq!(
        e[2].new.received_ms,
        Some(day("2023-07-03")),
        "the title's year"
    );
    assert_eq!(e[3].new.received_ms, Some(day("2023-08-15")));
    assert_eq!(e[0].new.category, Category::Neighbour);
    assert_eq!(e[1].new.category, Category::MarriageFamily);
    assert_eq!(e[2].new.category, Category::Labour);
    assert_eq!(e[3].new.category, Category::ForestLand);
    // Two columns of parties: the first applies, the second responds.
    let roles: Vec<_> = e[1]
        .new
        .parties
        .iter()
        .map(|p| (p.name.as_str(), p.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("马春梅", PartyRole::Applicant),
            ("马春林", PartyRole::Respondent),
            ("马春华", PartyRole::Respondent),
        ]
    );
    assert_eq!(
        e.iter().map(|e| e.ending).collect::<Vec<_>>(),
        vec![
            Ending::Resolved,
            Ending::Failed,
            Ending::Referred(guihe_protocol::event::ReferLevel::County),
            Ending::Open
        ]
    );
    assert_eq!(e[0].steps.last().map(|s| s.0), Some(day("2023-05-08")));
    assert_eq!(
        e[2].new.matter.as_ref().and_then(|m| m.amount_yuan),
        Some(12_000)
    );
    assert!(e.iter().all(|e| e.new.note.starts_with("台账导入")));
}

#[test]
fn every_row_read_is_a_record_the_command_path_accepts_dated_as_the_ledger_dates_it() {
    let rows = ledger();
    let got = read(&rows, &layout(&rows).unwrap(), &options(1));
    let mut office = Office::new(1, "tan");
    office.writer.schema = 2;
    office.now_ms = T0 + 400 * DAY_MS;
    let mut records: Vec<Record> = Vec::new();
    for entry in &got.entries {
        let mut r = office.create(entry.new.clone());
        for (at_ms, body) in &entry.steps {
            r.apply(
                &mut office.ctx(),
                Command::Event {
                    at_ms: Some(*at_ms),
                    body: body.clone(),
                },
            )
            .unwrap_or_else(|e| panic!("line {}: {e}", entry.line));
        }
        records.push(r);
    }
    let views: Vec<_> = records
        .iter()
        .map(|r| r.view(&office.rules).unwrap())
        .collect();
    let statuses: Vec<_> = views.iter().map(|v| v.common().status).collect();
    assert_eq!(
        statuses,
        vec![
            Status::Resolved,
            Status::Failed,
            Status::Referred,
            Status::Accepted
        ]
    );
    assert_eq!(date_of(views[0].common().received_ms), "2023-05-06");
    let rows: Vec<Row> = views.iter().map(Row::of).collect();
    let s = compute_rows(&rows, village(VILLAGE).into(), office.now_ms);
    assert_eq!((s.total.resolved, s.total.mediated), (1, 2));
    assert_eq!(s.monthly.first().map(|m| m.month.as_str()), Some("2023-05"));
}

#[test]
fn bad_rows_are_refused_one_by_one_in_chinese() {
    let mut rows = ledger();
    let bad = |cells: &[&str]| cells.iter().map(|c| t(c)).collect::<Vec<_>>();
    rows.insert(
        5,
        bad(&[
            "5",
            "2023.13.40",
            "甲",
            "乙",
            "",
            "事由",
            "调解成功",
            "",
            "",
        ]),
    );
    rows.insert(
        6,
        bad(&["6", "2023-05-09", "", "", "", "事由", "调解成功", "", ""]),
    );
    rows.insert(
        7,
        bad(&["7", "2023-05-09", "甲", "", "", "事由", "不了了之", "", ""]),
    );
    rows.insert(
        8,
        bad(&["8", "2099-01-01", "甲", "", "", "事由", "", "", ""]),
    );
    rows.insert(
        9,
        bad(&[
            "9",
            "2023-05-09",
            "甲",
            "",
            "",
            "事由",
            "调解成功",
            "2023-05-01",
            "",
        ]),
    );
    rows.insert(
        10,
        bad(&["10", "2023-05-09", "甲", "", "", "事由", "", "", "八百"]),
    );
    let got = read(&rows, &layout(&rows).unwrap(), &options(1));
    let lines: Vec<usize> = got.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![6, 7, 8, 9, 10, 11]);
    let zh: Vec<String> = got.errors.iter().map(|e| e.problem.zh()).collect();
    assert!(
        zh[0].contains("2023.13.40") && zh[0].contains("登记时间"),
        "{}",
        zh[0]
    );
    assert!(zh[1].contains("当事人"), "{}", zh[1]);
    assert!(zh[2].contains("不了了之"), "{}", zh[2]);
    assert!(zh[3].contains("晚于今天"), "{}", zh[3]);
    assert!(zh[4].contains("早于"), "{}", zh[4]);
    assert!(
        zh[5].contains("八百") && zh[5].contains("涉及金额"),
        "{}",
        zh[5]
    );
    assert!(
        zh.iter()
            .all(|m| !m.chars().any(|c| c.is_ascii_alphabetic())),
        "{zh:?}"
    );
    assert_eq!(got.entries.len(), 4, "the good rows still read");
    // No year anywhere: a date without one is refused.
    let mut untitled = ledger();
    untitled[0] = bad(&["矛盾纠纷排查调处台账"]);
    untitled.remove(5);
    untitled.remove(4);
    let got = read(&untitled, &layout(&untitled).unwrap(), &options(1));
    assert!(
        matches!(
            got.errors.first().map(|e| &e.problem),
            Some(Problem::NoYear { .. })
        ),
        "{:?}",
        got.errors
    );
    // A sheet with no table.
    assert_eq!(
        layout(&[bad(&["会议记录"]), bad(&["今天开会"])]).unwrap_err(),
        Problem::NoHeader
    );
}

#[test]
fn the_same_row_at_the_same_office_draws_the_same_ids() {
    let rows = ledger();
    let l = layout(&rows).unwrap();
    let once = read(&rows, &l, &options(1));
    let twice = read(&rows, &l, &options(1));
    let elsewhere = read(&rows, &l, &options(2));
    for ((a, b), c) in once
        .entries
        .iter()
        .zip(&twice.entries)
        .zip(&elsewhere.entries)
    {
        assert_eq!(a.seed, b.seed);
        assert_ne!(a.seed, c.seed);
    }
    let mut seeds: Vec<_> = once.entries.iter().map(|e| e.seed).collect();
    seeds.dedup();
    assert_eq!(seeds.len(), once.entries.len());
}

#[test]
fn dates_read_in_every_form_offices_write_them() {
    let day = |s| parse_date(s).unwrap();
    let read = |c: Cell| guihe_protocol::ledger::date_of(&c, Some(2024));
    for (cell, want) in [
        (Cell::Number(SERIAL_2023_05_06), "2023-05-06"),
        (Cell::Number(20_230_506.0), "2023-05-06"),
        (t("2023-05-06"), "2023-05-06"),
        (t("2023/5/6"), "2023-05-06"),
        (t("2023.5.6"), "2023-05-06"),
        (t("2023年5月6日"), "2023-05-06"),
        (t(" 2023年05月06日 "), "2023-05-06"),
        (t("20230506"), "2023-05-06"),
        (t("5月6日"), "2024-05-06"),
        (t("2024-02-29"), "2024-02-29"),
    ] {
        assert_eq!(read(cell.clone()), Ok(day(want)), "{cell:?}");
    }
    for bad in ["2023-02-29", "2023.5", "明天", "13月1日", "1899-01-01"] {
        assert!(read(t(bad)).is_err(), "{bad}");
    }
}

//! Dashboard figures over a county's views.
//!
//! `cargo bench -p guihe-protocol --bench stats -- [--cases N] [--json]`
//!
//! 2,000 real records (intake and up to 7 events each, from the seeded workload) are
//! folded into views; the views are then repeated with fresh ids, spread over 242 villages
//! of 33 townships and 12 months of intake, up to N (100,000 by default). The county
//! dashboard's figures are computed 60 times over all N rows (`stats::compute_rows`, the
//! small flat row the node keeps beside each view) and timed. The
//! baseline in the same run is what the same figures cost without materialised views:
//! loading and folding each record from its saved document, timed over the 2,000 real
//! records and scaled to N.

use std::time::Instant;

use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::{Division, VillageCode};
use guihe_protocol::id::{CaseId, NodeId, PetitionId};
use guihe_protocol::model::Kind;
use guihe_protocol::record::{Record, Writer};
use guihe_protocol::stats;
use guihe_protocol::view::View;
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const REAL: usize = 2_000;
const RUNS: usize = 60;
const MONTH_MS: u64 = 30 * 86_400_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let cases: usize = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let rules = Deadlines::default();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut writer = Writer::new(
        NodeId::from_bytes([9; 32]),
        1,
        "bench".parse().expect("staff"),
    );
    let start_ms: u64 = 1_767_196_800_000; // 2026-01-01
    let villages: Vec<VillageCode> = (0..242u64)
        .map(|i| {
            let township = 1 + i % 33;
            let n = 201 + i / 33;
            VillageCode::from_u64(500_240_000_000 + township * 1_000 + n).expect("village")
        })
        .collect();

    let mut saved = Vec::with_capacity(REAL);
    let mut views: Vec<View> = Vec::with_capacity(cases);
    for i in 0..REAL {
        let kind = if i % 6 == 5 {
            Kind::Petition
        } else {
            Kind::Case
        };
        let village = villages[i % villages.len()];
        let mut now = start_ms + (i as u64 * 12 * MONTH_MS) / REAL as u64;
        let new = workload::new_record(&mut rng, kind, &[village]);
        let (mut record, _) =
            Record::create(&mut writer.ctx(now, &mut rng, &rules), new).expect("create");
        for _ in 0..7 {
            now += 2 * 86_400_000;
            let fold = record.fold(&rules).expect("fold");
            let Some(cmd) = workload::next_command(&mut rng, &fold) else {
                break;
            };
            let _ = record.apply(&mut writer.ctx(now, &mut rng, &rules), cmd);
        }
        views.push(record.view(&rules).expect("view"));
        saved.push(record.save());
    }

    // Baseline: the figures straight from the documents, no materialised views.
    let started = Instant::now();
    let folded: Vec<View> = saved
        .iter()
        .map(|b| Record::load(b).expect("load").view(&rules).expect("view"))
        .collect();
    let county: Division = "500240000000".parse().expect("county");
    let now = start_ms + 13 * MONTH_MS;
    std::hint::black_box(stats::compute(&folded, county, now));
    let baseline_ms = started.elapsed().as_secs_f64() * 1e3 * cases as f64 / REAL as f64;

    // Spread copies over the villages and the year, with fresh ids.
    let mut i = 0usize;
    while views.len() < cases {
        let mut v = views[i % REAL].clone();
        let village = villages[(i * 7 + 3) % villages.len()];
        let shift = ((i as u64) * 12 * MONTH_MS / cases as u64) % (12 * MONTH_MS);
        match &mut v {
            View::Case(c) => {
                c.id = CaseId::random(&mut rng);
                c.common.jurisdictions = vec![village];
                c.common.received_ms = start_ms + shift;
            }
            View::Petition(p) => {
                p.id = PetitionId::random(&mut rng);
                p.common.jurisdictions = vec![village];
                p.common.received_ms = start_ms + shift;
            }
        }
        views.push(v);
        i += 1;
    }

    // The node keeps a row per record beside its view, rebuilt when the view changes.
    let started = Instant::now();
    let rows: Vec<stats::Row> = views.iter().map(stats::Row::of).collect();
    let rows_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(std::hint::black_box(stats::compute_rows(
            &rows, county, now,
        )));
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let township: Division = "500240001000".parse().expect("township");
    let mut ttimes = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        std::hint::black_box(stats::compute_rows(&rows, township, now));
        ttimes.push(started.elapsed().as_secs_f64() * 1e3);
    }
    ttimes.sort_by(f64::total_cmp);
    // A period the analyst picks: a quarter with the same quarter a year earlier beside
    // it (two passes over the rows), and everything since 2018.
    let timed_period = |text: &str| {
        let period = stats::Period::parse(text, now).expect("period");
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            std::hint::black_box(stats::compute_period(&rows, county, period, now));
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        times
    };
    let quarter = timed_period("2026-Q3");
    let since = timed_period("2018-01-01..");
    let s = last.expect("ran");
    let rows = [
        (
            "county_stats_p50_ms",
            percentile(&times, 0.5),
            format!("{} views", views.len()),
        ),
        (
            "county_stats_p95_ms",
            percentile(&times, 0.95),
            format!("{RUNS} runs"),
        ),
        (
            "township_stats_p95_ms",
            percentile(&ttimes, 0.95),
            "one township of 33, same views".to_string(),
        ),
        (
            "county_quarter_with_year_earlier_p95_ms",
            percentile(&quarter, 0.95),
            "2026-Q3 beside 2025-Q3".to_string(),
        ),
        (
            "county_since_2018_p95_ms",
            percentile(&since, 0.95),
            "2018-01-01.. beside a year earlier".to_string(),
        ),
        (
            "rows_from_views_ms",
            rows_ms,
            "once, when the views are loaded".to_string(),
        ),
        (
            "baseline_fold_from_documents_ms",
            baseline_ms,
            format!("load and fold every record, measured on {REAL} and scaled"),
        ),
        (
            "resolution_rate",
            s.total.resolution_rate().unwrap_or(0.0) * 100.0,
            format!(
                "{} concluded of {} records",
                s.total.concluded, s.total.records
            ),
        ),
    ];
    for (name, value, note) in rows {
        if json {
            println!(
                "{}",
                serde_json::json!({"name": name, "value": value, "note": note})
            );
        } else {
            println!("{name:<34} {value:>12.3}  {note}");
        }
    }
}

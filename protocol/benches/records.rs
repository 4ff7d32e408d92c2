//! Records benchmark: create a case with 10 events, save, load and fold, over many cases.
//!
//! `cargo bench -p guihe-protocol --bench records -- [--cases N] [--json]`
//!
//! Each operation is shown beside its baseline in the same run: loading beside a bare
//! `Automerge::load` of the same bytes, folding beside a bare hydration of the events.
//! Figures go to BENCHMARKS.md; `--json` prints one JSON object per line for comparisons.

use std::time::{Duration, Instant};

use automerge::Automerge;
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::VillageCode;
use guihe_protocol::id::NodeId;
use guihe_protocol::model::Kind;
use guihe_protocol::record::{Record, Writer};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const EVENTS_PER_CASE: usize = 10;

struct Figure {
    name: &'static str,
    total: Duration,
    items: usize,
    note: String,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let cases: usize = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);

    let rules = Deadlines::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut writer = Writer::new(
        NodeId::from_bytes([7; 32]),
        1,
        "bench".parse().expect("valid staff id"),
    );
    let village: VillageCode = "500240101201".parse().expect("valid village");
    let mut now_ms: u64 = 1_772_323_200_000;
    let mut figures = Vec::new();

    // Create: a case and 10 events, each its own command (and Automerge change).
    let mut records = Vec::with_capacity(cases);
    let mut events_written = 0usize;
    let started = Instant::now();
    for i in 0..cases {
        let kind = if i % 5 == 4 {
            Kind::Petition
        } else {
            Kind::Case
        };
        let new = workload::new_record(&mut rng, kind, &[village]);
        let mut ctx = writer.ctx(now_ms, &mut rng, &rules);
        let (mut record, _) = Record::create(&mut ctx, new).expect("create");
        for _ in 0..EVENTS_PER_CASE - 1 {
            now_ms += 3_600_000;
            let fold = record.fold(&rules).expect("fold");
            let Some(cmd) = workload::next_command(&mut rng, &fold) else {
                break;
            };
            let mut ctx = writer.ctx(now_ms, &mut rng, &rules);
            if record.apply(&mut ctx, cmd).is_ok() {
                events_written += 1;
            }
        }
        records.push(record);
    }
    figures.push(Figure {
        name: "create_case_with_10_events",
        total: started.elapsed(),
        items: cases,
        note: format!("{} events written after intake", events_written),
    });

    let started = Instant::now();
    let saved: Vec<Vec<u8>> = records.iter().map(Record::save).collect();
    let bytes: usize = saved.iter().map(Vec::len).sum();
    figures.push(Figure {
        name: "save",
        total: started.elapsed(),
        items: cases,
        note: format!("{} bytes per record on average", bytes / cases.max(1)),
    });

    let started = Instant::now();
    for b in &saved {
        std::hint::black_box(Automerge::load(b).expect("load"));
    }
    figures.push(Figure {
        name: "load_baseline_automerge",
        total: started.elapsed(),
        items: cases,
        note: "Automerge::load only".into(),
    });

    let started = Instant::now();
    let loaded: Vec<Record> = saved
        .iter()
        .map(|b| Record::load(b).expect("load"))
        .collect();
    figures.push(Figure {
        name: "load",
        total: started.elapsed(),
        items: cases,
        note: "Record::load: automerge load + schema and header checks".into(),
    });

    let started = Instant::now();
    for r in &loaded {
        std::hint::black_box(r.events().expect("events"));
    }
    figures.push(Figure {
        name: "fold_baseline_hydrate_events",
        total: started.elapsed(),
        items: cases,
        note: "hydrating the event list only".into(),
    });

    let started = Instant::now();
    let mut review = 0;
    for r in &loaded {
        let view = r.view(&rules).expect("view");
        if view.common().needs_review {
            review += 1;
        }
        std::hint::black_box(view);
    }
    figures.push(Figure {
        name: "fold_view",
        total: started.elapsed(),
        items: cases,
        note: format!("full fold into a view; {review} need review"),
    });

    if json {
        for f in &figures {
            println!(
                "{{\"bench\":\"records\",\"name\":\"{}\",\"items\":{},\"total_ms\":{:.3},\"per_item_us\":{:.3}}}",
                f.name,
                f.items,
                f.total.as_secs_f64() * 1e3,
                f.total.as_secs_f64() * 1e6 / f.items.max(1) as f64
            );
        }
    } else {
        println!(
            "{:<32} {:>10} {:>12} {:>14}  note",
            "operation", "items", "total ms", "per item µs"
        );
        for f in &figures {
            println!(
                "{:<32} {:>10} {:>12.1} {:>14.1}  {}",
                f.name,
                f.items,
                f.total.as_secs_f64() * 1e3,
                f.total.as_secs_f64() * 1e6 / f.items.max(1) as f64,
                f.note
            );
        }
    }
}

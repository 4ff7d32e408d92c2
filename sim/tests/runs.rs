//! Simulated runs: checks pass on healthy runs, a seed replays byte for byte, forgers get
//! nothing in, and a deliberately broken protocol is caught. The long sweeps (200 seeds of
//! `small`, 30 days of `shizhu`) run in release from tests/run.

use guihe_sim::run::{Config, Sabotage};
use guihe_sim::run_and_check;
use guihe_sim::scenario::{Scenario, ScenarioError};

fn small() -> Scenario {
    Scenario::named("small").unwrap()
}

fn config(seed: u64, days: f64) -> Config {
    Config {
        seed,
        days,
        sabotage: None,
    }
}

#[test]
fn a_small_county_with_faults_converges_on_several_seeds() {
    let s = small();
    for seed in [11, 12, 13] {
        let r = run_and_check(&s, config(seed, 6.0)).unwrap();
        assert!(r.passed(), "seed {seed}: {:?}", r.failures);
        assert!(r.changes > 0 && r.delivery_ratio == 1.0);
    }
}

/// The floor each class of link is measured against: what the changes had to cross, and
/// the sessions opened. No protocol sends less than the floor, so a run below it would mean
/// the floor is wrong. The stretch is measured on changes from the whole run, on both
/// classes and both kinds of record, and no arrival beats the foremost journey.
#[test]
fn every_link_class_reports_its_needed_bytes_sessions_and_stretch() {
    let r = run_and_check(&small(), config(21, 8.0)).unwrap();
    assert!(r.passed(), "{:?}", r.failures);
    for class in ["village_township", "township_county"] {
        let t = &r.traffic[class];
        assert!(t.sessions > 0, "{class}: no sessions counted");
        assert!(t.needed_bytes > 0, "{class}: nothing needed");
        assert!(
            t.bytes >= t.needed_bytes && t.wire_per_needed_byte >= 1.0,
            "{class}: {} wire bytes below the {} needed",
            t.bytes,
            t.needed_bytes
        );
        assert_eq!(t.budget_bytes, t.needed_bytes * 13 / 10 + 160 * t.sessions);
        let s = &r.stretch_by_class[class];
        assert!(s.count > 0 && s.p50 >= 100, "{class}: {s:?}");
    }
    assert!(
        r.stretch_by_kind.get("case").is_some_and(|s| s.count > 0),
        "{:?}",
        r.stretch_by_kind
    );
    assert_eq!(
        r.stretch_percent.count,
        r.stretch_by_class.values().map(|s| s.count).sum::<usize>()
    );
}

#[test]
fn the_same_seed_gives_the_same_report_byte_for_byte() {
    let s = small();
    let a = serde_json::to_string(&run_and_check(&s, config(5, 5.0)).unwrap()).unwrap();
    let b = serde_json::to_string(&run_and_check(&s, config(5, 5.0)).unwrap()).unwrap();
    assert_eq!(a, b);
    let c = serde_json::to_string(&run_and_check(&s, config(6, 5.0)).unwrap()).unwrap();
    assert_ne!(a, c, "another seed gives another run");
}

#[test]
fn forgers_get_nothing_in() {
    let mut s = small();
    s.faults.swarm = false;
    s.faults.forgers = 2;
    let r = run_and_check(&s, config(21, 5.0)).unwrap();
    assert!(r.passed(), "{:?}", r.failures);
    assert!(r.forged > 0, "the forgers wrote nothing");
    assert!(r.session_errors > 0, "the forgers' sessions were refused");
}

#[test]
fn compromised_villages_get_no_rule_breaking_change_applied() {
    let mut s = small();
    s.faults.swarm = false;
    s.faults.compromised = 2;
    let r = run_and_check(&s, config(22, 5.0)).unwrap();
    assert!(r.passed(), "{:?}", r.failures);
    assert_eq!(r.delivery_ratio, 1.0);
    assert_eq!(r.rule_breaking, 6, "three attacks per compromised village");
    assert!(
        r.quarantined >= 6,
        "kept aside where they were offered: {}",
        r.quarantined
    );
    assert!(
        r.reported_at_county >= 6,
        "the townships' quarantine reports reach the county: {}",
        r.reported_at_county
    );
}

#[test]
fn a_stolen_pc_gets_nothing_beyond_its_frontier_to_the_county() {
    let mut s = small();
    s.faults.swarm = false;
    s.faults.stolen = true;
    s.faults.forgers = 0;
    s.faults.compromised = 0;
    s.faults.half_dead = 0;
    // Over a few seeds, some of the thief's backdated entries reach a township before the
    // revocation does, and are carried to the county, which refuses them.
    let mut refused = 0;
    for seed in [23, 24, 25, 26] {
        let r = run_and_check(&s, config(seed, 9.0)).unwrap();
        assert!(r.passed(), "seed {seed}: {:?}", r.failures);
        refused += r.quarantined;
    }
    assert!(refused > 0, "no backdated entry was carried to the county");
}

/// The hosts' rules run in the simulator: a revocation reaches every office, each closes
/// the stolen office's live sessions the moment it learns of it (and refuses it at every
/// later hello), and a village whose link goes half-dead drops its session once the
/// township has been silent for the stall timeout.
#[test]
fn a_revocation_closes_sessions_everywhere_and_a_silent_peer_is_dropped() {
    let mut s = small();
    s.faults.swarm = false;
    s.faults.stolen = true;
    s.faults.forgers = 0;
    s.faults.compromised = 0;
    s.faults.half_dead = 3;
    s.faults.crashes_per_node_per_year = 0.0;
    // Village links mostly up, so that the stolen office is connected when its township
    // learns of the revocation, and a half-dead link has a session to stall.
    s.links.village.up_mean_hours = 500.0;
    s.links.village.down_mean_hours = 0.2;
    let (mut closed, mut stalled) = (0, 0);
    for seed in [31, 32, 33] {
        let r = run_and_check(&s, config(seed, 6.0)).unwrap();
        assert!(r.passed(), "seed {seed}: {:?}", r.failures);
        let revocation = r.revocation.expect("a stolen PC");
        assert_eq!(revocation.learnt_by, revocation.offices, "seed {seed}");
        assert_eq!(revocation.sessions_left_open, 0, "seed {seed}");
        closed += revocation.sessions_closed;
        for h in &r.half_dead {
            // Checked by the run: dropped as stalled, or lost to the link first.
            if let (true, Some(after)) = (h.expecting, h.stalled_after_ms) {
                assert!((120_000..=720_000).contains(&after), "{h:?}");
                stalled += 1;
            }
        }
    }
    assert!(closed > 0, "no live session was closed by the revocation");
    assert!(stalled > 0, "no half-dead link had a session to stall");
}

#[test]
fn a_protocol_that_drops_batches_is_caught() {
    let mut s = small();
    s.workload.petition_share = 0.5;
    let mut sabotaged = config(8, 6.0);
    sabotaged.sabotage = Some(Sabotage::DropPetitionBatches);
    let r = run_and_check(&s, sabotaged).unwrap();
    assert!(
        !r.passed(),
        "the checks missed a protocol that drops batches"
    );
    assert!(r.delivery_ratio < 1.0);
    assert!(
        r.failures
            .iter()
            .any(|f| f.contains("lacks") || f.contains("delivery ratio"))
    );
    // The same seed without the sabotage passes.
    assert!(run_and_check(&s, config(8, 6.0)).unwrap().passed());
}

#[test]
fn scenario_files_ship_and_parse() {
    for name in ["small", "shizhu", "province", "offices10k"] {
        let s = Scenario::named(name).unwrap();
        assert_eq!(s.name, name);
    }
    let shizhu = Scenario::named("shizhu").unwrap();
    assert_eq!(shizhu.townships.len(), 33);
    assert_eq!(shizhu.villages(), 242);
    assert!(shizhu.description.contains("synthetic"));
    assert!(Scenario::named("province").unwrap().villages() >= 3_000);
    // Offices: every village, every township and the county.
    let large = Scenario::named("offices10k").unwrap();
    assert_eq!(large.villages() + large.townships.len() + 1, 10_001);
}

#[test]
fn a_bad_scenario_is_a_typed_error() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/small.toml"),
    )
    .unwrap();
    let broken = text.replace("petition_share = 0.15", "petition_share = 1.5");
    assert!(matches!(
        Scenario::parse(&broken, "broken"),
        Err(ScenarioError::Invalid { .. })
    ));
    assert!(matches!(
        Scenario::parse("name = 3", "garbage"),
        Err(ScenarioError::Invalid { .. })
    ));
    assert!(matches!(
        Scenario::load(std::path::Path::new("/nonexistent/x.toml")),
        Err(ScenarioError::Read { .. })
    ));
}

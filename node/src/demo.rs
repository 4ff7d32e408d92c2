//! `guihe demo`: a small county run in one process with the real domain model.
//!
//! Four village offices record cases and a petition, each with its own clock, Automerge
//! actor and randomness. Records then travel up the way the mesh will carry them (village →
//! township → county, and back down to every village a record belongs to), by merging
//! Automerge documents in memory. A link outage is staged: the village resolves a case
//! while the township refers it, and the merged record is flagged for review until the
//! township's reviewer settles it. The views and documents are written to a folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::{Division, TownshipCode, VillageCode};
use guihe_protocol::event::{Body, Note, Refer, ReferLevel, Review, Session};
use guihe_protocol::id::{NodeId, RecordId};
use guihe_protocol::model::Kind;
use guihe_protocol::record::{Command, CommandError, DocError, NewRecord, Record, Writer};
use guihe_protocol::view::View;
use guihe_protocol::workflow::Status;
use guihe_protocol::workload;
use rand::RngCore;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A code in the demo's own county layout did not parse.
    #[error("demo county layout: {0}")]
    Layout(String),
    /// A command was refused.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A document could not be read.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// The output folder could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A view could not be encoded.
    #[error("encoding a view: {0}")]
    Json(#[from] serde_json::Error),
}

const DAY_MS: u64 = 86_400_000;

/// One office: its place in the county, its clock, actor and records.
struct Office {
    name: String,
    division: Division,
    writer: Writer,
    rng: StdRng,
    records: BTreeMap<RecordId, Record>,
}

impl Office {
    fn new(
        name: &str,
        division: Division,
        staff: &str,
        seed: &mut StdRng,
    ) -> Result<Self, DemoError> {
        let mut key = [0u8; 32];
        seed.fill_bytes(&mut key);
        let node = NodeId::from_bytes(key);
        Ok(Office {
            name: name.to_string(),
            division,
            writer: Writer::new(
                node,
                1,
                staff
                    .parse()
                    .map_err(|e| DemoError::Layout(format!("{e}")))?,
            ),
            rng: StdRng::from_rng(seed),
            records: BTreeMap::new(),
        })
    }

    fn create(
        &mut self,
        now_ms: u64,
        rules: &Deadlines,
        new: NewRecord,
    ) -> Result<RecordId, DemoError> {
        let mut ctx = self.writer.ctx(now_ms, &mut self.rng, rules);
        let (record, _) = Record::create(&mut ctx, new)?;
        let id = record.id();
        self.records.insert(id, record);
        Ok(id)
    }

    fn apply(
        &mut self,
        id: RecordId,
        now_ms: u64,
        rules: &Deadlines,
        command: Command,
    ) -> Result<(), DemoError> {
        let Some(record) = self.records.get_mut(&id) else {
            return Err(DemoError::Layout(format!(
                "{} holds no record {id}",
                self.name
            )));
        };
        let mut ctx = self.writer.ctx(now_ms, &mut self.rng, rules);
        record.apply(&mut ctx, command)?;
        Ok(())
    }

    fn event(
        &mut self,
        id: RecordId,
        now_ms: u64,
        rules: &Deadlines,
        body: Body,
    ) -> Result<(), DemoError> {
        self.apply(id, now_ms, rules, Command::Event { at_ms: None, body })
    }

    /// This office's view of a record, if it holds the record.
    fn view(&self, id: RecordId, rules: &Deadlines) -> Result<Option<View>, DemoError> {
        Ok(self.records.get(&id).map(|r| r.view(rules)).transpose()?)
    }

    /// Whether this office may hold a record of these villages.
    fn covers(&self, record: &Record) -> bool {
        record
            .jurisdictions()
            .iter()
            .any(|v| self.division.covers(*v))
    }

    /// Receives every record `from` holds that this office may hold: what a sync session
    /// between the two will do over the network.
    fn pull(&mut self, from: &Office) -> Result<usize, DemoError> {
        let mut changed = 0;
        for (id, theirs) in &from.records {
            if !self.covers(theirs) {
                continue;
            }
            match self.records.get_mut(id) {
                Some(ours) => {
                    let before = ours.heads();
                    ours.merge(theirs)?;
                    if ours.heads() != before {
                        changed += 1;
                    }
                }
                None => {
                    self.records
                        .insert(*id, theirs.fork(self.writer.actor.clone()));
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }
}

fn code<T: std::str::FromStr>(s: &str) -> Result<T, DemoError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e: T::Err| DemoError::Layout(format!("{s}: {e}")))
}

/// Runs the demo, writing the offices' records under `out`.
pub fn run(out: &Path) -> Result<(), DemoError> {
    let rules = Deadlines::default();
    let mut seed = StdRng::from_os_rng();
    // Codes and village names are synthetic; the townships are two of Shizhu's real ones.
    let t1: TownshipCode = code("500240001000")?;
    let t2: TownshipCode = code("500240002000")?;
    let villages: Vec<(&str, VillageCode)> = vec![
        ("示例一村", code("500240001201")?),
        ("示例二村", code("500240001202")?),
        ("示例三村", code("500240002201")?),
        ("示例四村", code("500240002202")?),
    ];
    let mut county = Office::new(
        "石柱县综治中心",
        Division::County(t1.county()),
        "county.analyst",
        &mut seed,
    )?;
    let mut townships = vec![
        Office::new(
            "南宾街道",
            Division::Township(t1),
            "nanbin.review",
            &mut seed,
        )?,
        Office::new("西沱镇", Division::Township(t2), "xituo.review", &mut seed)?,
    ];
    let mut offices = Vec::new();
    for (name, v) in &villages {
        offices.push(Office::new(
            name,
            Division::Village(*v),
            "mediator",
            &mut seed,
        )?);
    }

    // A month of work, starting 30 days ago, so some deadlines have passed.
    let now_real = now_ms();
    let start = now_real.saturating_sub(30 * DAY_MS);
    println!("贵和 guihe 演示 demo: 1 county, 2 townships, 4 villages");
    println!(
        "县 county 500240 石柱土家族自治县 · 乡镇 townships 南宾街道, 西沱镇 · 村 villages: synthetic names and codes\n"
    );

    let mut work_rng = StdRng::from_rng(&mut seed);
    for (i, office) in offices.iter_mut().enumerate() {
        let village = villages
            .get(i)
            .map(|(_, v)| *v)
            .ok_or_else(|| DemoError::Layout("village".into()))?;
        for n in 0..3u64 {
            let mut t = start + n * 7 * DAY_MS + (i as u64) * 3_600_000;
            let new = workload::new_record(&mut work_rng, Kind::Case, &[village]);
            let id = office.create(t, &rules, new)?;
            for _ in 0..(3 + work_rng.next_u32() % 4) {
                t += DAY_MS;
                let Some(record) = office.records.get(&id) else {
                    break;
                };
                let fold = record.fold(&rules)?;
                let Some(cmd) = workload::next_command(&mut work_rng, &fold) else {
                    break;
                };
                // The workload only proposes what the rules allow; a refusal here would be a
                // bug worth seeing.
                office.apply(id, t, &rules, cmd)?;
            }
        }
    }

    // A petition at the first village, accepted but not yet replied to.
    let (v1_name, v1) = villages
        .first()
        .copied()
        .ok_or_else(|| DemoError::Layout("village".into()))?;
    let first = offices
        .first_mut()
        .ok_or_else(|| DemoError::Layout("office".into()))?;
    let petition = first.create(
        start,
        &rules,
        workload::new_record(&mut work_rng, Kind::Petition, &[v1]),
    )?;
    first.event(
        petition,
        start + 20 * DAY_MS,
        &rules,
        Body::Accept(Note {
            note: "符合受理条件".into(),
        }),
    )?;

    // A land dispute between the first two villages belongs to both.
    let (_, v2) = villages
        .get(1)
        .copied()
        .ok_or_else(|| DemoError::Layout("village".into()))?;
    let mut cross = workload::new_record(&mut work_rng, Kind::Case, &[v1, v2]);
    cross.summary = "两村交界处山林权属争议，涉及两村村民。".into();
    let cross_id = first.create(start + DAY_MS, &rules, cross)?;
    first.event(
        cross_id,
        start + 2 * DAY_MS,
        &rules,
        Body::Accept(Note::default()),
    )?;
    first.event(
        cross_id,
        start + 3 * DAY_MS,
        &rules,
        Body::Session(Session {
            place: "两村交界现场".into(),
            note: "两村调解员共同主持，双方各执一词。".into(),
        }),
    )?;

    // Sync: villages → townships → county → townships → villages.
    sync_round(&mut offices, &mut townships, &mut county)?;

    // A link outage: the village resolves the cross-village case while the township,
    // not knowing, refers it to the county.
    let t = now_real - 2 * DAY_MS;
    let first = offices
        .first_mut()
        .ok_or_else(|| DemoError::Layout("office".into()))?;
    first.event(
        cross_id,
        t,
        &rules,
        Body::Resolve(Note {
            note: "双方当场和解".into(),
        }),
    )?;
    let nanbin = townships
        .first_mut()
        .ok_or_else(|| DemoError::Layout("township".into()))?;
    nanbin.event(
        cross_id,
        t,
        &rules,
        Body::Refer(Refer {
            level: ReferLevel::County,
            to: "县矛盾纠纷调处中心".into(),
            reason: "涉及两村山林确权，上报县级".into(),
        }),
    )?;
    sync_round(&mut offices, &mut townships, &mut county)?;
    let flagged = county
        .view(cross_id, &rules)?
        .is_some_and(|v| v.common().needs_review);
    println!(
        "断网期间的冲突 contradiction while the link was down: the village resolved {cross} while the township referred it → 待审核 needs review at the county: {flagged}",
        cross = cross_id_short(cross_id)
    );
    let nanbin = townships
        .first_mut()
        .ok_or_else(|| DemoError::Layout("township".into()))?;
    nanbin.event(
        cross_id,
        now_real - DAY_MS,
        &rules,
        Body::Review(Review {
            outcome: Some(Status::Resolved),
            note: "经核实双方已和解，撤回上报".into(),
        }),
    )?;
    sync_round(&mut offices, &mut townships, &mut county)?;
    let settled = county
        .view(cross_id, &rules)?
        .is_some_and(|v| !v.common().needs_review && v.common().status == Status::Resolved);
    println!(
        "乡镇审核后 after the township's review: settled as 调解成功 resolved everywhere: {settled}\n"
    );

    // What each office holds, and whether every replica of every record agrees.
    println!("{:<16} {:>8}  statuses", "office 办公室", "records");
    let all: Vec<&Office> = offices
        .iter()
        .chain(townships.iter())
        .chain(std::iter::once(&county))
        .collect();
    for office in &all {
        let mut statuses: BTreeMap<&'static str, usize> = BTreeMap::new();
        for r in office.records.values() {
            *statuses
                .entry(r.view(&rules)?.common().status.label_zh())
                .or_default() += 1;
        }
        let list: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!(
            "{:<16} {:>8}  {}",
            office.name,
            office.records.len(),
            list.join(" · ")
        );
    }
    let mut diverged = 0;
    for (id, master) in &county.records {
        for office in &all {
            if let Some(r) = office.records.get(id)
                && r.heads() != master.heads()
            {
                diverged += 1;
            }
        }
    }
    println!(
        "\n副本一致 replicas identical: {}",
        if diverged == 0 { "yes 是" } else { "NO 否" }
    );

    let views: Vec<View> = county
        .records
        .values()
        .map(|r| r.view(&rules))
        .collect::<Result<_, _>>()?;
    let open = views.iter().filter(|v| v.common().status.is_open()).count();
    let resolved = views
        .iter()
        .filter(|v| v.common().status.counts_as_resolved())
        .count();
    let concluded = views.len() - open;
    let overdue = views
        .iter()
        .filter(|v| v.common().is_overdue(now_real))
        .count();
    println!(
        "县级汇总 county: {} records · {open} 办理中 in hand · {resolved} of {concluded} concluded settled locally ({:.1}%) · {overdue} overdue · {} need review",
        views.len(),
        100.0 * resolved as f64 / concluded.max(1) as f64,
        views.iter().filter(|v| v.common().needs_review).count()
    );

    write_out(out, &all, &rules)?;
    println!("\n查看 where to look:");
    println!(
        "  {}  one folder per office: <id>.json (the view) and <id>.automerge (the document)",
        out.display()
    );
    println!(
        "  {v1_name} petition deadlines: {}/{}/{}.json",
        out.display(),
        v1,
        petition
    );
    println!("\nThis build runs the domain model in one process and merges documents in memory.");
    println!(
        "The mesh (libp2p), the sled store, the daemon and the web pages come with the node and web issues;"
    );
    println!("until then there is no server to open in a browser.");
    if diverged != 0 {
        return Err(DemoError::Layout(format!("{diverged} replicas diverged")));
    }
    Ok(())
}

fn cross_id_short(id: RecordId) -> String {
    match id {
        RecordId::Case(c) => c.short(),
        RecordId::Petition(p) => p.short(),
    }
}

fn sync_round(
    villages: &mut [Office],
    townships: &mut [Office],
    county: &mut Office,
) -> Result<(), DemoError> {
    for t in townships.iter_mut() {
        for v in villages.iter() {
            t.pull(v)?;
        }
    }
    for t in townships.iter() {
        county.pull(t)?;
    }
    for t in townships.iter_mut() {
        t.pull(county)?;
    }
    for v in villages.iter_mut() {
        for t in townships.iter() {
            v.pull(t)?;
        }
    }
    Ok(())
}

fn write_out(out: &Path, offices: &[&Office], rules: &Deadlines) -> Result<(), DemoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DemoError::Io { path, source }
    };
    for office in offices {
        let dir = out.join(office.division.to_string());
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        for (id, record) in &office.records {
            let view = record.view(rules)?;
            let json = serde_json::to_vec_pretty(&view)?;
            let path = dir.join(format!("{id}.json"));
            fs::write(&path, json).map_err(io(&path))?;
            let path = dir.join(format!("{id}.automerge"));
            fs::write(&path, record.save()).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

//! Shared helpers for the protocol's integration tests: a replica with its own clock,
//! actor and seeded randomness.

#![allow(dead_code, unreachable_pub)]

pub mod mesh;

use guihe_protocol::deadline::Deadlines;
use guihe_protocol::division::VillageCode;
use guihe_protocol::event::Body;
use guihe_protocol::id::{EventId, NodeId};
use guihe_protocol::model::{Category, Channel, Kind, Party, PartyRole, Risk};
use guihe_protocol::record::{Command, CommandError, Ctx, NewRecord, Record, Writer};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

pub const DAY_MS: u64 = 86_400_000;
pub const HOUR_MS: u64 = 3_600_000;
/// 2026-03-01, a plausible "now" for tests.
pub const T0: u64 = 1_772_323_200_000;

pub fn village(s: &str) -> VillageCode {
    s.parse().unwrap()
}

/// One office: a node's writer, its randomness, its rules and its idea of now.
pub struct Office {
    pub writer: Writer,
    pub rng: ChaCha8Rng,
    pub rules: Deadlines,
    pub now_ms: u64,
}

impl Office {
    pub fn new(seed: u8, staff: &str) -> Office {
        let node = NodeId::from_bytes([seed; 32]);
        Office {
            writer: Writer::new(node, 1, staff.parse().unwrap()),
            rng: ChaCha8Rng::seed_from_u64(u64::from(seed)),
            rules: Deadlines::default(),
            now_ms: T0,
        }
    }

    pub fn ctx(&mut self) -> Ctx<'_> {
        self.writer.ctx(self.now_ms, &mut self.rng, &self.rules)
    }

    pub fn create(&mut self, new: NewRecord) -> Record {
        Record::create(&mut self.ctx(), new).unwrap().0
    }

    pub fn record(&mut self, r: &mut Record, body: Body) -> Result<EventId, CommandError> {
        r.apply(&mut self.ctx(), Command::Event { at_ms: None, body })
    }

    pub fn at(&mut self, r: &mut Record, at_ms: u64, body: Body) -> Result<EventId, CommandError> {
        r.apply(
            &mut self.ctx(),
            Command::Event {
                at_ms: Some(at_ms),
                body,
            },
        )
    }

    /// This office's own replica of a record received from elsewhere.
    pub fn replica(&self, r: &Record) -> Record {
        r.fork(self.writer.actor.clone())
    }
}

pub fn new_case(villages: &[&str]) -> NewRecord {
    NewRecord {
        kind: Kind::Case,
        jurisdictions: villages.iter().map(|v| village(v)).collect(),
        received_ms: None,
        category: Category::HousingHomestead,
        risk: Risk::General,
        channel: None,
        restricted: false,
        parties: vec![
            Party {
                name: "谭德明".into(),
                role: PartyRole::Applicant,
                minor: false,
                contact: None,
                details: None,
            },
            Party {
                name: "冉光荣".into(),
                role: PartyRole::Respondent,
                minor: false,
                contact: Some("13800000000".into()),
                details: None,
            },
        ],
        summary: "两户因宅基地界线发生争执。".into(),
        note: String::new(),
        matter: None,
    }
}

pub fn new_petition(village: &str) -> NewRecord {
    NewRecord {
        kind: Kind::Petition,
        channel: Some(Channel::Visit),
        category: Category::LandRequisition,
        summary: "反映征地补偿款未足额发放。".into(),
        parties: vec![Party {
            name: "马春梅".into(),
            role: PartyRole::Petitioner,
            minor: false,
            contact: None,
            details: None,
        }],
        ..new_case(&[village])
    }
}

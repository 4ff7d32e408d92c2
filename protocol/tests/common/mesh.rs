//! A county of in-memory replicas; `sync` connects two of them through their hosts, and
//! `Link` holds one pair of sessions open for tests of the session's own messages.

use guihe_protocol::cert::{CertBody, Identity, Keypair, Role, Root};
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::event::{Body, Note};
use guihe_protocol::host::{Close, Config as HostConfig, loopback};
use guihe_protocol::id::RecordId;
use guihe_protocol::ingest::commit_local;
use guihe_protocol::model::Kind;
use guihe_protocol::record::{Command, Record};
use guihe_protocol::replica::Replica;
use guihe_protocol::store::{MemStore, Store, StoredChange};
use guihe_protocol::sync::{Config, Event, Session, SessionError, Stats};
use guihe_protocol::workload;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::T0;

pub type Node = Replica<MemStore>;

pub struct County {
    pub root: Root,
    pub rng: ChaCha8Rng,
    pub serial: u64,
    pub rules: Deadlines,
    pub now_ms: u64,
}

impl County {
    pub fn new(seed: u64) -> County {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        County {
            root: Root::new(Keypair::generate(&mut rng)),
            rng,
            serial: 0,
            rules: Deadlines::default(),
            now_ms: T0,
        }
    }

    pub fn identity(&mut self, role: Role, division: &str) -> Identity {
        let key = Keypair::generate(&mut self.rng);
        self.serial += 1;
        let cert = self
            .root
            .issue(CertBody {
                serial: self.serial,
                node: key.public(),
                role,
                division: division.parse().unwrap(),
                not_before_ms: T0 - 1_000,
                not_after_ms: T0 + 365 * 86_400_000,
            })
            .unwrap();
        Identity { key, cert }
    }

    pub fn node(&mut self, role: Role, division: &str) -> Node {
        let identity = self.identity(role, division);
        Replica::new(identity, MemStore::new(), "worker".parse().unwrap(), 1)
    }

    /// A new case at `node` for these villages, with `events` more commands.
    pub fn case(&mut self, node: &mut Node, villages: &[&str], events: usize) -> RecordId {
        self.now_ms += 60_000;
        let villages: Vec<_> = villages.iter().map(|v| v.parse().unwrap()).collect();
        let new = workload::new_record(&mut self.rng, Kind::Case, &villages);
        let (id, _) = node
            .create(self.now_ms, &mut self.rng, &self.rules, new)
            .unwrap();
        for _ in 0..events {
            self.work(node, id);
        }
        id
    }

    /// One more command on a record at `node`; returns the new changes.
    pub fn work(&mut self, node: &mut Node, id: RecordId) -> Vec<StoredChange> {
        self.now_ms += 60_000;
        let fold = node.record(id).unwrap().fold(&self.rules).unwrap();
        let command = workload::next_command(&mut self.rng, &fold).unwrap_or_else(note);
        node.apply(id, self.now_ms, &mut self.rng, &self.rules, command)
            .unwrap()
            .1
    }
}

impl County {
    /// A new case at `node` as a modified build would write it: past the replica's
    /// authority check, signed with the node's real key, so that the offices it reaches are
    /// tested against it.
    pub fn forged_case(&mut self, node: &mut Node, villages: &[&str]) -> RecordId {
        self.now_ms += 60_000;
        let villages: Vec<_> = villages.iter().map(|v| v.parse().unwrap()).collect();
        let new = workload::new_record(&mut self.rng, Kind::Case, &villages);
        let mut ctx = node.writer.ctx(self.now_ms, &mut self.rng, &self.rules);
        let (record, _) = Record::create(&mut ctx, new).unwrap();
        commit_local(&mut node.store, &node.identity.key, &record, &[]).unwrap();
        record.id()
    }

    /// One more command on a record at `node`, past the replica's authority check (see
    /// `forged_case`); returns the new changes.
    pub fn forged_work(&mut self, node: &mut Node, id: RecordId) -> Vec<StoredChange> {
        self.now_ms += 60_000;
        let mut record = node.record(id).unwrap();
        let before = record.heads();
        let mut ctx = node.writer.ctx(self.now_ms, &mut self.rng, &self.rules);
        record.apply(&mut ctx, note()).unwrap();
        commit_local(&mut node.store, &node.identity.key, &record, &before).unwrap()
    }
}

/// A note added to a record: a command any record takes in any status.
pub fn note() -> Command {
    Command::Event {
        at_ms: None,
        body: Body::Amend(guihe_protocol::event::Amend {
            target: None,
            change: guihe_protocol::event::Change::Note(Note::default()),
            reason: "补充说明".into(),
        }),
    }
}

/// What one session between two nodes did.
#[derive(Debug, Default)]
pub struct Run {
    pub a: Stats,
    pub b: Stats,
    /// Flights: batches of messages going one way, counted when anything moved.
    pub flights: u32,
    pub delivered: usize,
}

impl Run {
    pub fn bytes(&self) -> u64 {
        self.a.bytes_out + self.b.bytes_out
    }
    /// Round trips, rounding up.
    pub fn round_trips(&self) -> u32 {
        self.flights.div_ceil(2)
    }
}

/// Bound on flights in one settle, so a protocol bug cannot loop a test forever.
const FLIGHTS_MAX: u32 = 10_000;

/// Runs a connection between `a` (dialler) and `b` through their hosts
/// (`host::loopback`, the daemon's and the simulator's steps) until both are quiet, or
/// until `deliver_max` messages were delivered (the link then drops: whatever is in
/// flight is lost). A session that ends on an error returns it.
pub fn sync_limited(
    county: &County,
    a: &mut Node,
    b: &mut Node,
    deliver_max: usize,
) -> Result<Run, SessionError> {
    let run = loopback(
        &HostConfig::default(),
        county.root.public(),
        a,
        b,
        county.now_ms,
        deliver_max,
    )
    .map_err(|why| match why {
        Close::Refused(e) => e,
        Close::Impostor => SessionError::Impostor,
        other => SessionError::Scope(other.to_string()),
    })?;
    Ok(Run {
        a: run.a,
        b: run.b,
        flights: run.flights,
        delivered: run.delivered,
    })
}

pub fn sync(county: &County, a: &mut Node, b: &mut Node) -> Result<Run, SessionError> {
    sync_limited(county, a, b, usize::MAX)
}

/// Whether `b` holds `id` with the same heads as `a`.
pub fn same(a: &Node, b: &Node, id: RecordId) -> bool {
    match (a.store.doc(id).unwrap(), b.store.doc(id).unwrap()) {
        (Some(x), Some(y)) => x.get_heads() == y.get_heads(),
        _ => false,
    }
}

/// Drains events into a list, for tests that look at them.
pub fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

/// A live connection between two nodes: sessions that stay open.
pub struct Link {
    pub a: Session,
    pub b: Session,
}

impl Link {
    pub fn open(county: &County, a: &Node, b: &Node) -> Link {
        let root = county.root.public();
        Link {
            a: Session::new(Config::default(), root, a.identity.clone(), true, &a.store)
                .unwrap()
                .expecting(b.identity.key.public(), &a.store),
            b: Session::new(Config::default(), root, b.identity.clone(), false, &b.store)
                .unwrap()
                .expecting(a.identity.key.public(), &b.store),
        }
    }

    /// A link whose both sessions speak protocol `version` (an older one: a peer not yet
    /// upgraded).
    pub fn speaking(county: &County, a: &Node, b: &Node, version: u16) -> Link {
        let link = Link::open(county, a, b);
        Link {
            a: link.a.speaking(version),
            b: link.b.speaking(version),
        }
    }

    /// Delivers messages both ways until the link is quiet; returns the flights used.
    pub fn settle(&mut self, county: &County, a: &mut Node, b: &mut Node) -> u32 {
        let mut flights = 0;
        while flights < FLIGHTS_MAX {
            let to_b: Vec<_> = std::iter::from_fn(|| self.a.poll_transmit()).collect();
            let to_a: Vec<_> = std::iter::from_fn(|| self.b.poll_transmit()).collect();
            if to_a.is_empty() && to_b.is_empty() {
                return flights;
            }
            flights += 1;
            for m in to_b {
                self.b.handle(&m, &mut b.store, county.now_ms).unwrap();
            }
            for m in to_a {
                self.a.handle(&m, &mut a.store, county.now_ms).unwrap();
            }
        }
        panic!("link did not settle");
    }
}

//! Three hosts (village, township, county) driven by hand through connect, reconcile,
//! relay, revoke, stall and close: the contract of `protocol::host`.

mod common;

use std::collections::BTreeSet;

use common::mesh::{County, Node, same};
use guihe_protocol::cert::{CertError, RevocationBody, Revoked, Role};
use guihe_protocol::host::{Close, Config, ConnId, Direction, Event, Host};
use guihe_protocol::store::Store;
use guihe_protocol::sync::SessionError;
use guihe_protocol::wire::PROTOCOL_VERSION;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

const V1: &str = "500240101201";
const V2: &str = "500240101202";
const T1: &str = "500240101000";
const COUNTY: &str = "500240000000";

/// One office: its replica and its host.
struct Office {
    node: Node,
    host: Host,
    events: Vec<Event>,
    closes: Vec<(ConnId, Close)>,
}

/// A connection between two offices: each end's name for it.
#[derive(Clone, Copy, Debug)]
struct Wire {
    a: usize,
    ca: ConnId,
    b: usize,
    cb: ConnId,
    /// Frames from b to a are lost (a half-dead link).
    mute_b: bool,
}

/// The offices and the wires: the driver moves frames, and nothing else.
struct Net {
    county: County,
    offices: Vec<Office>,
    wires: Vec<Wire>,
    /// Every frame delivered: from which office, and its bytes.
    delivered: Vec<(usize, Vec<u8>)>,
}

impl Net {
    fn new(county: County, nodes: Vec<Node>, config: &Config) -> Net {
        let root = county.root.public();
        let offices = nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| Office {
                node,
                host: Host::new(
                    config.clone(),
                    root,
                    Box::new(ChaCha8Rng::seed_from_u64(i as u64)),
                ),
                events: Vec::new(),
                closes: Vec::new(),
            })
            .collect();
        Net {
            county,
            offices,
            wires: Vec::new(),
            delivered: Vec::new(),
        }
    }

    fn now(&self) -> u64 {
        self.county.now_ms
    }

    /// `a` dials `b`: both hosts take the connection, or the refusal comes back.
    fn connect(&mut self, a: usize, b: usize) -> Result<usize, Close> {
        self.connect_as(a, b, Some(self.offices[a].node.identity.key.public()))
    }

    /// `a` dials `b`, and `b`'s transport authenticated `a` with `key`.
    fn connect_as(
        &mut self,
        a: usize,
        b: usize,
        key: Option<guihe_protocol::id::NodeId>,
    ) -> Result<usize, Close> {
        let now = self.now();
        let kb = self.offices[b].node.identity.key.public();
        let oa = &mut self.offices[a];
        let ca = oa.host.open(
            Direction::Dialled,
            Some(kb),
            PROTOCOL_VERSION,
            now,
            &mut oa.node,
        )?;
        let ob = &mut self.offices[b];
        let cb = match ob.host.open(
            Direction::Accepted,
            key,
            PROTOCOL_VERSION,
            now,
            &mut ob.node,
        ) {
            Ok(cb) => cb,
            Err(e) => {
                self.offices[a].host.closed(ca);
                return Err(e);
            }
        };
        self.wires.push(Wire {
            a,
            ca,
            b,
            cb,
            mute_b: false,
        });
        Ok(self.wires.len() - 1)
    }

    /// The other end of `conn` at office `o`, if the wire is up.
    fn far(&self, o: usize, conn: ConnId) -> Option<(usize, ConnId, bool)> {
        self.wires.iter().find_map(|w| {
            if w.a == o && w.ca == conn {
                Some((w.b, w.cb, false))
            } else if w.b == o && w.cb == conn {
                Some((w.a, w.ca, w.mute_b))
            } else {
                None
            }
        })
    }

    /// Drains every host's outputs and delivers frames until all are quiet. A close from
    /// a host drops the wire, and the far end hears the transport close.
    fn settle(&mut self) -> usize {
        let mut delivered = 0;
        for _ in 0..10_000 {
            let mut frames = Vec::new();
            for o in 0..self.offices.len() {
                let office = &mut self.offices[o];
                while let Some(e) = office.host.poll_event() {
                    office.events.push(e);
                }
                let mut closes = Vec::new();
                while let Some((conn, why)) = office.host.poll_close() {
                    closes.push(conn);
                    office.closes.push((conn, why));
                }
                while let Some((conn, bytes)) = office.host.poll_transmit() {
                    frames.push((o, conn, bytes));
                }
                for conn in closes {
                    if let Some((f, fc, _)) = self.far(o, conn) {
                        self.offices[f].host.closed(fc);
                    }
                    self.wires
                        .retain(|w| !((w.a == o && w.ca == conn) || (w.b == o && w.cb == conn)));
                }
            }
            if frames.is_empty() {
                return delivered;
            }
            let now = self.now();
            for (o, conn, bytes) in frames {
                let Some((f, fc, muted)) = self.far(o, conn) else {
                    continue;
                };
                if muted {
                    continue;
                }
                delivered += 1;
                let far = &mut self.offices[f];
                far.host.frame(fc, &bytes, now, &mut far.node);
                self.delivered.push((o, bytes));
            }
        }
        panic!("the hosts did not settle");
    }

    /// The transport drops the wire: both ends hear it.
    fn drop_wire(&mut self, w: usize) {
        let wire = self.wires.remove(w);
        self.offices[wire.a].host.closed(wire.ca);
        self.offices[wire.b].host.closed(wire.cb);
    }

    /// Moves the clock to each host's next timeout up to `until`, handling them.
    fn run_until(&mut self, until: u64) {
        loop {
            let next = self
                .offices
                .iter()
                .map(|o| o.host.poll_timeout())
                .min()
                .unwrap_or(u64::MAX);
            if next > until {
                self.county.now_ms = until;
                return;
            }
            self.county.now_ms = self.county.now_ms.max(next);
            let now = self.now();
            for o in &mut self.offices {
                if o.host.poll_timeout() <= now {
                    o.host.handle_timeout(now, &mut o.node);
                }
            }
            self.settle();
        }
    }

    fn office(&mut self, o: usize) -> &mut Office {
        &mut self.offices[o]
    }

    fn received_at(&self, o: usize) -> BTreeSet<automerge::ChangeHash> {
        self.offices[o]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Received { changes, .. } => Some(changes.iter().map(|c| c.hash)),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

const VILLAGE: usize = 0;
const TOWNSHIP: usize = 1;
const TOP: usize = 2;
const VILLAGE2: usize = 3;

fn county_of_four(config: &Config) -> Net {
    let mut county = County::new(41);
    let village = county.node(Role::Village, V1);
    let township = county.node(Role::Township, T1);
    let top = county.node(Role::County, COUNTY);
    let village2 = county.node(Role::Village, V2);
    Net::new(county, vec![village, township, top, village2], config)
}

#[test]
fn three_hosts_connect_reconcile_relay_revoke_stall_and_close() {
    let config = Config::default();
    let mut net = county_of_four(&config);
    // Maintenance first: nothing waits yet, and the timers settle.
    let t0 = net.now();
    net.run_until(t0);

    // Connect and reconcile: a case written before the links came up reaches the county.
    let before = net.county.case(&mut net.offices[VILLAGE].node, &[V1], 2);
    net.connect(VILLAGE, TOWNSHIP).unwrap();
    net.connect(TOWNSHIP, TOP).unwrap();
    net.settle();
    for o in [VILLAGE, TOWNSHIP, TOP] {
        assert!(
            net.offices[o]
                .events
                .iter()
                .any(|e| matches!(e, Event::Peer { .. })),
            "office {o} saw no verified peer"
        );
    }
    assert!(
        net.offices[VILLAGE]
            .events
            .iter()
            .any(|e| matches!(e, Event::Reconciled { .. }))
    );
    // The township, which the village dialled, knows the link synced too: it answered.
    assert!(
        net.offices[TOWNSHIP]
            .events
            .iter()
            .any(|e| matches!(e, Event::Answered { .. })),
        "the accepting side never learns that the link synced"
    );
    assert!(
        !net.offices[VILLAGE]
            .events
            .iter()
            .any(|e| matches!(e, Event::Answered { .. })),
        "the dialling side answers nothing"
    );
    assert!(same(
        &net.offices[VILLAGE].node,
        &net.offices[TOP].node,
        before
    ));

    // Relay: a change written while connected goes village → township → county through
    // the township's host, with no driver step between.
    let written = net.county.work(&mut net.offices[VILLAGE].node, before);
    let o = net.office(VILLAGE);
    o.host.wrote(&written, &mut o.node);
    net.settle();
    let at_top = net.received_at(TOP);
    assert!(written.iter().all(|c| at_top.contains(&c.hash)));
    assert!(same(
        &net.offices[VILLAGE].node,
        &net.offices[TOP].node,
        before
    ));

    // Per-peer cap: two sessions per peer, the third is refused by the township.
    net.connect(VILLAGE, TOWNSHIP).unwrap();
    assert_eq!(
        net.connect(VILLAGE, TOWNSHIP).unwrap_err(),
        Close::Excess(2)
    );
    net.settle();

    // Impostor: a transport key that is no node key, and a key that is not the
    // certificate's.
    assert_eq!(
        net.connect_as(VILLAGE2, TOWNSHIP, None).unwrap_err(),
        Close::Impostor
    );
    let other = net.offices[TOP].node.identity.key.public();
    net.connect_as(VILLAGE2, TOWNSHIP, Some(other)).unwrap();
    net.settle();
    assert!(
        net.offices[TOWNSHIP]
            .closes
            .iter()
            .any(|(_, why)| matches!(why, Close::Refused(SessionError::Impostor))),
        "{:?}",
        net.offices[TOWNSHIP].closes
    );

    // Stall: the second village dials, and nothing from the township reaches it. Its host
    // closes the session after the stall timeout, not before.
    let w = net.connect(VILLAGE2, TOWNSHIP).unwrap();
    net.wires[w].mute_b = true;
    let opened = net.now();
    net.settle();
    net.run_until(opened + config.stall_ms - 1);
    assert!(
        !net.offices[VILLAGE2]
            .closes
            .iter()
            .any(|(_, why)| matches!(why, Close::Stalled(_)))
    );
    net.run_until(opened + config.stall_ms);
    assert!(
        net.offices[VILLAGE2]
            .closes
            .iter()
            .any(|(_, why)| matches!(why, Close::Stalled(_))),
        "{:?}",
        net.offices[VILLAGE2].closes
    );

    // Revoke: the county's operator installs a list revoking the village; the county's
    // host passes it to the township, whose host closes both of the village's sessions at
    // once and passes the list on.
    let village_sessions = |net: &Net| {
        let key = net.offices[VILLAGE].node.identity.key.public();
        let host = &net.offices[TOWNSHIP].host;
        host.conns()
            .filter(|c| host.peer_key(*c) == Some(key))
            .count()
    };
    assert_eq!(village_sessions(&net), 2);
    let list = net
        .county
        .root
        .revocations(RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: net.offices[VILLAGE].node.identity.cert.body.serial,
                node: net.offices[VILLAGE].node.identity.key.public(),
                from_ms: net.now(),
            }],
        })
        .unwrap();
    net.county.now_ms += 1_000;
    let now = net.now();
    let top = net.office(TOP);
    top.node.store.put_revocations(&list).unwrap();
    top.host.news(now, &mut top.node);
    net.settle();
    assert!(
        net.offices[TOWNSHIP]
            .events
            .contains(&Event::Revocations(1))
    );
    assert_eq!(village_sessions(&net), 0);
    let revoked_closes = net.offices[TOWNSHIP]
        .closes
        .iter()
        .filter(|(_, why)| *why == Close::Revoked)
        .count();
    assert_eq!(revoked_closes, 2);
    // The village's next contact is refused at the hello.
    net.connect(VILLAGE, TOWNSHIP).unwrap();
    net.settle();
    assert!(
        net.offices[TOWNSHIP].closes.iter().any(|(_, why)| matches!(
            why,
            Close::Refused(SessionError::Certificate(CertError::Revoked { .. }))
        )),
        "{:?}",
        net.offices[TOWNSHIP].closes
    );
    assert_eq!(village_sessions(&net), 0);

    // Close: the transport drops the township–county wire; both hosts forget it, and
    // neither names a timeout for it any more.
    let w = net
        .wires
        .iter()
        .position(|w| w.a == TOWNSHIP && w.b == TOP)
        .unwrap();
    net.drop_wire(w);
    assert_eq!(net.offices[TOP].host.conns().count(), 0);
    assert!(net.offices[TOWNSHIP].host.conns().count() == 0);
    assert!(
        net.offices[TOP].host.poll_timeout() > net.now(),
        "only the maintenance is due"
    );
}

/// A bundle carried from a village that has no link is taken in by the township's host
/// as a session's batch would be: stored, then passed on to the county over the open
/// connection at once. A bundle that is not one is refused and changes nothing.
#[test]
fn a_bundle_imported_at_a_township_reaches_the_county_through_its_host() {
    let mut net = county_of_four(&Config::default());
    let id = net.county.case(&mut net.offices[VILLAGE].node, &[V1], 3);
    // A node's store holds its own certificate, as the daemon's does.
    let village = &mut net.offices[VILLAGE].node;
    let cert = village.identity.cert.clone();
    village.store.put_certificate(&cert).unwrap();
    let division = cert.body.division;
    let bundle = guihe_protocol::bundle::of_store(&net.offices[VILLAGE].node.store, division, None)
        .unwrap()
        .to_bytes()
        .unwrap();
    net.connect(TOWNSHIP, TOP).unwrap();
    net.settle();

    let now = net.now();
    let township = net.office(TOWNSHIP);
    let refused = township
        .host
        .import(b"GUIHEBUN\x09", now, &mut township.node);
    assert!(refused.is_err());
    assert!(township.node.store.doc(id).unwrap().is_none());

    let imported = township
        .host
        .import(&bundle, now, &mut township.node)
        .unwrap();
    assert!(
        imported.new > 0 && imported.quarantined == 0,
        "{imported:?}"
    );
    net.settle();
    assert!(same(&net.offices[VILLAGE].node, &net.offices[TOP].node, id));
    assert!(
        net.offices[TOWNSHIP]
            .events
            .iter()
            .any(|e| matches!(e, Event::Received { conn: None, .. }))
    );
}

/// The certificates of a change's signer travel once to each peer: a later session's
/// batches leave out those the peer acknowledged before.
#[test]
fn a_later_session_sends_no_certificate_the_peer_already_holds() {
    use guihe_protocol::wire::Message;
    let mut net = county_of_four(&Config::default());
    let certs_from_village = |net: &Net, from: usize| -> (usize, usize) {
        let mut batches = 0;
        let mut certs = 0;
        for (o, bytes) in &net.delivered[from..] {
            if *o == VILLAGE
                && let Ok(Message::Changes { certs: c, .. }) = Message::decode(bytes)
            {
                batches += 1;
                certs += c.len();
            }
        }
        (batches, certs)
    };
    // A node's store holds its own certificate, as the daemon's does.
    let village = &mut net.offices[VILLAGE].node;
    let cert = village.identity.cert.clone();
    village.store.put_certificate(&cert).unwrap();
    let id = net.county.case(&mut net.offices[VILLAGE].node, &[V1], 2);
    let w = net.connect(VILLAGE, TOWNSHIP).unwrap();
    net.settle();
    assert_eq!(
        certs_from_village(&net, 0),
        (1, 1),
        "the first batch carries the cert"
    );
    net.drop_wire(w);

    net.county.work(&mut net.offices[VILLAGE].node, id);
    let mark = net.delivered.len();
    net.connect(VILLAGE, TOWNSHIP).unwrap();
    net.settle();
    assert!(same(
        &net.offices[VILLAGE].node,
        &net.offices[TOWNSHIP].node,
        id
    ));
    assert_eq!(
        certs_from_village(&net, mark),
        (1, 0),
        "the peer holds the certificate already"
    );

    // The township loses its store (its disk died; it starts again from nothing). It asks
    // for the village's certificate at the hello; the village takes that to mean it may
    // have lost others, and sends every certificate again.
    net.drop_wire(net.wires.len() - 1);
    net.offices[TOWNSHIP].node.store = guihe_protocol::store::MemStore::new();
    let mark = net.delivered.len();
    net.connect(VILLAGE, TOWNSHIP).unwrap();
    net.settle();
    let kinds: Vec<_> = net.delivered[mark..]
        .iter()
        .map(|(o, b)| (*o, guihe_protocol::wire::Message::kind_of(b).unwrap_or("?")))
        .collect();
    assert!(certs_from_village(&net, mark).1 > 0, "{kinds:?}");
    assert!(same(
        &net.offices[VILLAGE].node,
        &net.offices[TOWNSHIP].node,
        id
    ));
}

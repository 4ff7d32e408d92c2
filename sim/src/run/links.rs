//! Links and sessions: each office's host driven over virtual links. A link up opens a
//! connection at both ends; the hosts' frames cross it with latency and bandwidth; a link
//! down, a crash or a host's own close ends it.

#![allow(clippy::indexing_slicing)]

use super::*;

impl Sim {
    /// The lower tier dials: both hosts take the connection, with the key each end's
    /// transport authenticated, as the daemon's does.
    pub(super) fn connect(&mut self, l: usize) {
        let now = self.now;
        let (a, b) = (self.links[l].a, self.links[l].b);
        let (ka, kb) = (
            self.nodes[a].replica.identity.key.public(),
            self.nodes[b].replica.identity.key.public(),
        );
        let na = &mut self.nodes[a];
        let Ok(ca) = na.host.open(
            Direction::Dialled,
            Some(kb),
            PROTOCOL_VERSION,
            now,
            &mut na.replica,
        ) else {
            self.session_errors += 1;
            return;
        };
        let nb = &mut self.nodes[b];
        let cb = match nb.host.open(
            Direction::Accepted,
            Some(ka),
            PROTOCOL_VERSION,
            now,
            &mut nb.replica,
        ) {
            Ok(cb) => cb,
            Err(_) => {
                self.session_errors += 1;
                self.nodes[a].host.closed(ca);
                return;
            }
        };
        self.nodes[a].conns.insert(ca, l);
        self.nodes[b].conns.insert(cb, l);
        let link = &mut self.links[l];
        link.up_since = Some(now);
        link.sessions = Some((ca, cb));
        link.sessions_opened += 1;
        self.drain(a);
        self.drain(b);
    }

    /// The link's connection ends: what is in flight is lost, and its up interval closes.
    /// Returns the connection's names at both ends, if it was open.
    pub(super) fn end(&mut self, l: usize) -> Option<(ConnId, ConnId)> {
        let link = &mut self.links[l];
        let ends = link.sessions.take()?;
        link.epoch += 1;
        if let Some(since) = link.up_since.take() {
            link.intervals.push((since, self.now));
        }
        Some(ends)
    }

    /// The connection drops: both hosts hear it, and what is in flight is lost.
    pub(super) fn close(&mut self, l: usize) {
        if self.links[l].sessions.is_none() {
            return;
        }
        if self.links[l].half_dead
            && let Some(e) = self
                .half_dead
                .iter_mut()
                .rev()
                .find(|e| e.link == l && e.stalled_at.is_none() && e.lost_at.is_none())
        {
            e.lost_at = Some(self.now);
        }
        let Some((ca, cb)) = self.end(l) else {
            return;
        };
        let (a, b) = (self.links[l].a, self.links[l].b);
        self.nodes[a].conns.remove(&ca);
        self.nodes[b].conns.remove(&cb);
        self.nodes[a].host.closed(ca);
        self.nodes[b].host.closed(cb);
    }

    /// Carries out what a node's host has to do after an input: frames go on their links,
    /// closed connections drop, events are recorded, and its timer is set.
    pub(super) fn drain(&mut self, n: usize) {
        while let Some(event) = self.nodes[n].host.poll_event() {
            self.host_event(n, event);
        }
        while let Some((conn, why)) = self.nodes[n].host.poll_close() {
            self.closed_by_host(n, conn, &why);
        }
        while let Some((conn, bytes)) = self.nodes[n].host.poll_transmit() {
            let Some(&l) = self.nodes[n].conns.get(&conn) else {
                continue;
            };
            let left = self.transmit(l, self.links[l].a == n, bytes);
            // The simulator knows when the frame will have left: the peer's silence counts
            // from then.
            self.nodes[n].host.sent(conn, left);
        }
        self.watch_revoked(n);
        let at = self.nodes[n].host.poll_timeout().max(self.now);
        if self.nodes[n].timer_at.is_none_or(|t| at < t) {
            self.nodes[n].timer_at = Some(at);
            self.at(at, Ev::Timer { node: n, at });
        }
    }

    /// A frame leaves on a link: it waits for the link to be free, takes its bandwidth's
    /// time and arrives after the latency. Returns when it will have left.
    pub(super) fn transmit(&mut self, l: usize, to_b: bool, bytes: Vec<u8>) -> u64 {
        let class = self.class(self.links[l].kind);
        let link = &mut self.links[l];
        let dir = usize::from(!to_b);
        let start = link.busy_until[dir].max(self.now);
        let send_ms = (bytes.len() as u64 * 1_000).div_ceil(class.bandwidth_bytes_per_s);
        link.busy_until[dir] = start + send_ms;
        link.bytes += bytes.len() as u64;
        link.messages += 1;
        *link
            .bytes_by_kind
            .entry(Message::kind_of(&bytes).unwrap_or("unknown"))
            .or_default() += bytes.len() as u64;
        let arrive = start + send_ms + class.latency_ms;
        let epoch = link.epoch;
        self.at(
            arrive,
            Ev::Deliver {
                link: l,
                epoch,
                to_b,
                bytes,
            },
        );
        start + send_ms
    }

    pub(super) fn host_event(&mut self, n: usize, event: HostEvent) {
        match event {
            HostEvent::Received { changes, .. } => {
                for c in &changes {
                    self.arrived.entry((c.hash, n)).or_insert(self.now);
                }
            }
            HostEvent::Revocations(_) => {
                self.revoked_at.entry(n).or_insert(self.now);
            }
            _ => {}
        }
    }

    /// A node's host closed a connection: the link's connection drops at both ends.
    pub(super) fn closed_by_host(&mut self, n: usize, conn: ConnId, why: &Close) {
        let Some(l) = self.nodes[n].conns.remove(&conn) else {
            return;
        };
        match why {
            Close::Stalled(_) => {
                self.stalls += 1;
                let now = self.now;
                if let Some(e) = self
                    .half_dead
                    .iter_mut()
                    .rev()
                    .find(|e| e.link == l && e.stalled_at.is_none())
                    && self.links[l].half_dead
                    && self.links[l].a == n
                {
                    e.stalled_at = Some(now);
                }
            }
            Close::Revoked => self.revoked_closes += 1,
            _ => self.session_errors += 1,
        }
        let Some((ca, cb)) = self.end(l) else {
            return;
        };
        let (a, b) = (self.links[l].a, self.links[l].b);
        let (far, far_conn) = if a == n { (b, cb) } else { (a, ca) };
        self.nodes[far].conns.remove(&far_conn);
        self.nodes[far].host.closed(far_conn);
    }

    /// The host's timeout came, if it is still the one scheduled.
    pub(super) fn timer(&mut self, n: usize, at: u64) {
        if self.nodes[n].timer_at != Some(at) {
            return;
        }
        self.nodes[n].timer_at = None;
        let now = self.now;
        let node = &mut self.nodes[n];
        if !node.running {
            // A stopped node has no timers; its restart sets them.
            return;
        }
        node.host.handle_timeout(now, &mut node.replica);
        self.drain(n);
    }

    /// Changes a node wrote itself go to its host.
    pub(super) fn offer_written(&mut self, n: usize, changes: &[StoredChange]) {
        let node = &mut self.nodes[n];
        node.host.wrote(changes, &mut node.replica);
        self.drain(n);
    }

    pub(super) fn deliver(&mut self, l: usize, epoch: u64, to_b: bool, bytes: &[u8]) {
        if self.links[l].epoch != epoch {
            return;
        }
        let Some((ca, cb)) = self.links[l].sessions else {
            return;
        };
        if !to_b && self.links[l].half_dead {
            return;
        }
        let (node, conn) = if to_b {
            (self.links[l].b, cb)
        } else {
            (self.links[l].a, ca)
        };
        if self.config.sabotage == Some(Sabotage::DropPetitionBatches)
            && let Ok(Message::Changes { changes, .. }) = Message::decode(bytes)
            && changes
                .iter()
                .any(|c| matches!(c.record, RecordId::Petition(_)))
        {
            return;
        }
        self.last_delivery = self.last_delivery.max(self.now);
        let now = self.now;
        let target = &mut self.nodes[node];
        target.host.frame(conn, bytes, now, &mut target.replica);
        self.drain(node);
    }
}

impl Link {
    pub(super) fn new(a: usize, b: usize, kind: LinkKind) -> Link {
        Link {
            a,
            b,
            kind,
            up: false,
            epoch: 0,
            busy_until: [0, 0],
            sessions: None,
            up_since: None,
            intervals: Vec::new(),
            bytes: 0,
            messages: 0,
            sessions_opened: 0,
            bytes_by_kind: BTreeMap::new(),
            half_dead: false,
        }
    }
}

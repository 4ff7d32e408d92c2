//! Writing a record: the commands a person gives (intake, an event, a party, a
//! corrected summary), each one Automerge change stamped with the caller's `now`, and what a
//! command needs from its caller.

use super::*;

/// Who records an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The node.
    pub node: NodeId,
    /// The staff member at the node.
    pub staff: StaffId,
    /// Their display name (谭德明), written on each event from record schema 2: accounts
    /// never leave their node. Empty if the office has none for them.
    pub display: String,
    /// The office's division, where the writer knows it (a node's certificate names it):
    /// steps only some offices take (接收, `workflow::may_receive`) are checked against it.
    pub division: Option<crate::division::Division>,
}

impl Author {
    /// The display name an event written in `schema` carries: none before schema 2.
    fn by(&self, schema: u64) -> String {
        if schema >= 2 {
            self.display
                .chars()
                .take(crate::model::limits::NAME_CHARS_MAX)
                .collect()
        } else {
            String::new()
        }
    }
}

/// What a command needs from its caller: time, the node's clock, randomness, the author and
/// the rules. The protocol reads no clock and no OS randomness of its own.
#[allow(missing_debug_implementations)]
pub struct Ctx<'a> {
    /// The caller's current time, in milliseconds since the epoch.
    pub now_ms: u64,
    /// The node's hybrid logical clock.
    pub clock: &'a mut hlc::Clock,
    /// Randomness for ids.
    pub rng: &'a mut dyn RngCore,
    /// The Automerge actor of this node's store incarnation (see [`actor_id`]).
    pub actor: &'a ActorId,
    /// Who records.
    pub author: &'a Author,
    /// Deadline rules.
    pub rules: &'a Deadlines,
    /// The schema version a new record is written in (clamped to those this build can
    /// write): what the county's settings allow (`cert::writable_schema`).
    pub schema: u64,
}

/// A node's writing identity: its clock, its Automerge actor and who is at the keyboard.
/// One per node (or per simulated node); it hands out a [`Ctx`] for each command.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The node's hybrid logical clock, shared by all its records.
    pub clock: hlc::Clock,
    /// The actor of this node's store incarnation.
    pub actor: ActorId,
    /// Who records.
    pub author: Author,
    /// The schema version new records are written in (see [`Ctx::schema`]); the node sets
    /// it from the county's settings.
    pub schema: u64,
}

impl Writer {
    /// A writer for `node` in store incarnation `incarnation`, recording as `staff`.
    pub fn new(node: NodeId, incarnation: u64, staff: StaffId) -> Writer {
        Writer {
            clock: hlc::Clock::new(),
            actor: actor_id(node, incarnation),
            author: Author {
                node,
                staff,
                display: String::new(),
                division: None,
            },
            schema: 1,
        }
    }

    /// The context for one command at `now_ms`.
    pub fn ctx<'a>(
        &'a mut self,
        now_ms: u64,
        rng: &'a mut dyn RngCore,
        rules: &'a Deadlines,
    ) -> Ctx<'a> {
        Ctx {
            now_ms,
            clock: &mut self.clock,
            rng,
            actor: &self.actor,
            author: &self.author,
            rules,
            schema: self.schema,
        }
    }
}

/// A new record, as taken in.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// Case or petition.
    pub kind: Kind,
    /// The villages it belongs to (one or more).
    pub jurisdictions: Vec<VillageCode>,
    /// When it was received; `None` means now.
    pub received_ms: Option<u64>,
    /// Category.
    pub category: Category,
    /// Risk level.
    pub risk: Risk,
    /// How a petition arrived (petitions only).
    pub channel: Option<Channel>,
    /// Restricted by hand (a minor among the parties restricts it regardless).
    pub restricted: bool,
    /// The parties.
    pub parties: Vec<Party>,
    /// The summary.
    pub summary: String,
    /// A note on the intake.
    pub note: String,
    /// The matter's particulars (record schema 2).
    pub matter: Option<Matter>,
}

/// The oldest record schema that can hold what `body` writes on a record of `kind`: 2 for
/// the particulars of a party or a matter, a case number and the steps of schema 2
/// (`workflow::schema_of`), 1 otherwise.
fn schema_of_body(kind: Kind, body: &Body) -> u64 {
    let details = |p: &Party| p.details.is_some();
    if crate::workflow::schema_of(kind, body.event_type()) >= 2 {
        return 2;
    }
    let two = match body {
        Body::Review(r) => r
            .outcome
            .is_some_and(|s| crate::workflow::status_schema(kind, s) >= 2),
        Body::Intake(i) => i.matter.is_some(),
        Body::Accept(a) | Body::Receive(a) => a.number.is_some(),
        Body::Amend(Amend {
            change: Change::Party(fix),
            ..
        }) => details(&fix.party),
        _ => false,
    };
    if two { 2 } else { 1 }
}

/// Refuses what needs a newer schema than the county allows (`cert::writable_schema`):
/// offices not yet upgraded could not read it.
fn check_schema(needed: u64, allowed: u64) -> Result<(), CommandError> {
    if needed > allowed {
        return Err(CommandError::SchemaNotAllowed { needed, allowed });
    }
    Ok(())
}

/// A command chosen from a record's fold (see [`Record::choose`]), with the fold.
#[allow(missing_debug_implementations)]
pub struct Chosen<'r> {
    heads: Vec<ChangeHash>,
    folded: Folded<'r>,
    command: Command,
}

/// Something a person does to an existing record.
#[derive(Debug, Clone)]
pub enum Command {
    /// Record an event.
    Event {
        /// When it happened; `None` means now.
        at_ms: Option<u64>,
        /// What happened.
        body: Body,
    },
    /// Add a party.
    AddParty {
        /// The party.
        party: Party,
        /// Why the party is added now.
        reason: String,
    },
    /// Correct the summary: an amend event that carries the whole new text. The text taken
    /// in at intake stays in the record; concurrent corrections that differ are a conflict
    /// for review, and the one that sorts last is shown until then.
    EditSummary {
        /// The new text.
        text: String,
        /// Why.
        reason: String,
    },
}

impl Record {
    /// Takes in a new record: one Automerge change holding the header and the intake event.
    pub fn create(ctx: &mut Ctx<'_>, new: NewRecord) -> Result<(Record, EventId), CommandError> {
        if new.jurisdictions.is_empty() {
            return Err(CommandError::NoJurisdiction);
        }
        if new.jurisdictions.len() > JURISDICTIONS_MAX {
            return Err(CommandError::TooManyJurisdictions);
        }
        let mut villages = new.jurisdictions.clone();
        villages.sort();
        if let Some(pair) = villages.windows(2).find(|w| w.first() == w.get(1))
            && let Some(&dup) = pair.first()
        {
            return Err(CommandError::DuplicateJurisdiction(dup));
        }
        if new.parties.len() > PARTIES_MAX {
            return Err(CommandError::TooManyParties);
        }
        for p in &new.parties {
            p.check()?;
            if p.details.is_some() {
                check_schema(2, ctx.schema)?;
            }
        }
        if let Some(matter) = &new.matter {
            matter.check_for(new.kind)?;
            check_schema(2, ctx.schema)?;
        }
        check_text("summary", &new.summary, SUMMARY_CHARS_MAX, true)?;
        check_text("note", &new.note, NOTE_CHARS_MAX, false)?;
        if (new.kind == Kind::Petition) != new.channel.is_some() {
            return Err(CommandError::Channel);
        }
        let received_ms = new.received_ms.unwrap_or(ctx.now_ms);
        if received_ms > ctx.now_ms.saturating_add(FUTURE_TOLERANCE_MS) {
            return Err(CommandError::InFuture {
                at_ms: received_ms,
                now_ms: ctx.now_ms,
            });
        }

        let id = match new.kind {
            Kind::Case => RecordId::Case(CaseId::random(ctx.rng)),
            Kind::Petition => RecordId::Petition(PetitionId::random(ctx.rng)),
        };
        let parties: BTreeMap<String, Party> = new
            .parties
            .into_iter()
            .map(|p| (PartyId::random(ctx.rng).to_string(), p))
            .collect();
        let header = Header {
            // This build writes every schema version up to its own.
            schema: ctx.schema.clamp(1, SCHEMA_VERSION),
            kind: new.kind,
            id,
            jurisdictions: new.jurisdictions.clone(),
            created_ms: received_ms,
            category: new.category,
            risk: new.risk,
            restricted: new.restricted,
            channel: new.channel,
            parties,
            summary: autosurgeon::Text::with_value(&new.summary),
        };
        let event = Event {
            id: EventId::random(ctx.rng),
            hlc: ctx.clock.tick(ctx.now_ms),
            at_ms: received_ms,
            node: ctx.author.node,
            staff: ctx.author.staff.clone(),
            by: ctx.author.by(ctx.schema),
            after: Vec::new(),
            body: Body::Intake(crate::event::Intake {
                note: new.note,
                matter: new.matter,
            }),
        };
        let mut doc = Automerge::new().with_actor(ctx.actor.clone());
        let event_id = event.id;
        let root = header
            .stored(&event)
            .map_err(|e| DocError::Shape(e.to_string()))?;
        doc.transact_with(
            |_| commit_options(ctx.now_ms, "intake"),
            |tx| -> Result<(), DocError> {
                // The whole record in one batch, in the form the change rules read back.
                tx.init_root_from_hydrate(&root)?;
                Ok(())
            },
        )
        .map_err(|failure| failure.error)?;
        Ok((
            Record {
                doc,
                kind: new.kind,
                id,
                jurisdictions: new.jurisdictions,
                received_ms,
            },
            event_id,
        ))
    }

    /// Carries out a command as one Automerge change. On any error nothing is written.
    pub fn apply(&mut self, ctx: &mut Ctx<'_>, command: Command) -> Result<EventId, CommandError> {
        let folded = self.folder(ctx.rules)?;
        self.apply_folded(ctx, folded, command)
    }

    /// Chooses a command from the record as it stands: `choose` is given `rng` and the
    /// record's fold. With [`Record::apply_chosen`], a driver that picks the next command
    /// from the record's state (the simulator's workload) reads the record once. `Ok(None)`
    /// if `choose` chose nothing.
    pub fn choose<'r>(
        &self,
        rules: &'r Deadlines,
        rng: &mut dyn RngCore,
        choose: impl FnOnce(&mut dyn RngCore, &Fold) -> Option<Command>,
    ) -> Result<Option<Chosen<'r>>, CommandError> {
        let folded = self.folder(rules)?;
        let mut fold = folded.folder.clone().finish();
        fold.malformed = folded.malformed;
        Ok(choose(rng, &fold).map(|command| Chosen {
            heads: self.heads(),
            folded,
            command,
        }))
    }

    /// Carries out a command chosen by [`Record::choose`] on this record, as
    /// [`Record::apply`] would; refused if the record changed since. The command is checked
    /// against the deadline rules it was chosen under (those given to `choose`), not
    /// `ctx.rules`.
    pub fn apply_chosen(
        &mut self,
        ctx: &mut Ctx<'_>,
        chosen: Chosen<'_>,
    ) -> Result<EventId, CommandError> {
        if chosen.heads != self.heads() {
            return Err(CommandError::Document(DocError::Shape(
                "the record changed since the command was chosen".into(),
            )));
        }
        self.apply_folded(ctx, chosen.folded, chosen.command)
    }

    /// Carries out `command` on the record folded as `folded`.
    fn apply_folded(
        &mut self,
        ctx: &mut Ctx<'_>,
        folded: Folded<'_>,
        command: Command,
    ) -> Result<EventId, CommandError> {
        let Folded {
            mut folder,
            events,
            header,
            ..
        } = folded;
        let (events_obj, len) = self.events_obj()?;
        if len >= EVENTS_MAX {
            return Err(CommandError::TooManyEvents);
        }
        let (at_ms, body, new_party) = match command {
            Command::Event { at_ms, body } => (at_ms, body, None),
            Command::AddParty { party, reason } => {
                party.check()?;
                if party.details.is_some() {
                    check_schema(2, ctx.schema)?;
                }
                if header.parties.len() >= PARTIES_MAX {
                    return Err(CommandError::TooManyParties);
                }
                let id = PartyId::random(ctx.rng);
                let body = Body::Amend(Amend {
                    target: None,
                    change: Change::PartyAdded(id),
                    reason,
                });
                (None, body, Some((id, party)))
            }
            Command::EditSummary { text, reason } => {
                // The summary taken in at intake is never edited: a correction is an amend
                // event that carries the whole new text, so no node can blank or rewrite
                // what was recorded, and the change rules can say so.
                let body = Body::Amend(Amend {
                    target: None,
                    change: Change::Summary(Note { note: text }),
                    reason,
                });
                (None, body, None)
            }
        };
        let at_ms = at_ms.unwrap_or(ctx.now_ms);
        if at_ms > ctx.now_ms.saturating_add(FUTURE_TOLERANCE_MS) {
            return Err(CommandError::InFuture {
                at_ms,
                now_ms: ctx.now_ms,
            });
        }
        if at_ms < self.received_ms {
            return Err(CommandError::BeforeReceived {
                at_ms,
                received_ms: self.received_ms,
            });
        }
        body.check()?;
        if let Some((id, party)) = &new_party {
            folder.note_party(*id, party.clone());
        }
        folder.check(&body, at_ms)?;
        if let (Body::Receive(_), Some(division)) = (&body, ctx.author.division)
            && !crate::workflow::may_receive(folder.referral(), division)
        {
            return Err(CommandError::Refused(Refusal::NotReferredHere));
        }
        check_schema(schema_of_body(self.kind, &body), ctx.schema)?;

        // The events no other event names as seen: what this author has seen last.
        let mut heads: BTreeMap<EventId, ()> = events.iter().map(|e| (e.id, ())).collect();
        for e in &events {
            for seen in &e.after {
                heads.remove(seen);
            }
        }
        for e in &events {
            ctx.clock.observe(e.hlc);
        }
        let event = Event {
            id: EventId::random(ctx.rng),
            hlc: ctx.clock.tick(ctx.now_ms),
            at_ms,
            node: ctx.author.node,
            staff: ctx.author.staff.clone(),
            by: ctx.author.by(ctx.schema),
            after: heads.into_keys().collect(),
            body,
        };
        let event_id = event.id;
        let message = event.body.event_type().label_zh();
        self.doc.set_actor(ctx.actor.clone());
        self.doc
            .transact_with(
                |_| commit_options(ctx.now_ms, message),
                |tx| -> Result<(), DocError> {
                    // Each written in one batch, in the form the change rules read back.
                    let form = |e: RuleError| DocError::Shape(e.to_string());
                    if let Some((id, party)) = &new_party {
                        let parties = match tx.get(ROOT, "parties")? {
                            Some((Value::Object(ObjType::Map), obj)) => obj,
                            _ => return Err(DocError::Shape("no party map".into())),
                        };
                        let value = crate::rules::party_value(party).map_err(form)?;
                        tx.batch_create_object(&parties, id.to_string(), &value, false)?;
                    }
                    let value = crate::rules::event_value(&event).map_err(form)?;
                    tx.batch_create_object(&events_obj, len, &value, true)?;
                    Ok(())
                },
            )
            .map_err(|failure| failure.error)?;
        Ok(event_id)
    }

    /// Applies a party correction. A convenience over [`Command::Event`] with an `Amend`.
    pub fn fix_party(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: PartyId,
        party: Party,
        reason: String,
    ) -> Result<EventId, CommandError> {
        self.apply(
            ctx,
            Command::Event {
                at_ms: None,
                body: Body::Amend(Amend {
                    target: None,
                    change: Change::Party(PartyFix { id, party }),
                    reason,
                }),
            },
        )
    }
}

/// A command's commit: stamped with the caller's `now` and a short message.
pub(crate) fn commit_options(now_ms: u64, message: &str) -> CommitOptions {
    CommitOptions::default()
        .with_time(i64::try_from(now_ms).unwrap_or(i64::MAX))
        .with_message(message.to_string())
}

//! The fold in progress: each event checked against the workflow at its place in the
//! order, then applied or kept aside as skipped.

use super::*;

impl<'a> Folder<'a> {
    /// Starts a fold from the record's header.
    pub fn new(start: Start, rules: &'a Deadlines) -> Self {
        Self {
            rules,
            state: Fold {
                kind: start.kind,
                status: Status::Registered,
                category: start.category,
                risk: start.risk,
                restricted_flag: start.restricted,
                parties: start.parties,
                handler: None,
                received_ms: start.received_ms,
                accepted_ms: None,
                decided_ms: None,
                sessions: 0,
                follow_ups: 0,
                agreement: None,
                judicial: None,
                protection: None,
                extension_days: None,
                reply_ms: None,
                reexam_requested_ms: None,
                reexam_answered_ms: None,
                recheck_requested_ms: None,
                recheck_answered_ms: None,
                referral: None,
                referred_ms: None,
                resolved_ms: None,
                closed_ms: None,
                satisfaction: None,
                applied: 0,
                last_at_ms: start.received_ms,
                skipped: Vec::new(),
                conflicts: Vec::new(),
                malformed: 0,
                deadlines: Vec::new(),
                staff: BTreeSet::new(),
                handlers: BTreeSet::new(),
                assigned: None,
                entered_ms: 0,
                outcome: None,
                summary: None,
                matter: None,
                taken_on_at: None,
                numbers: Vec::new(),
            },
            position: BTreeMap::new(),
            ancestors: Vec::new(),
            decisive: Vec::new(),
            amended: BTreeMap::new(),
            conflicts: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// The latest referral, if any.
    pub fn referral(&self) -> Option<&crate::event::Refer> {
        self.state.referral.as_ref()
    }

    /// The current status, for command validation.
    pub fn status(&self) -> Status {
        self.state.status
    }

    /// Whether the record holds an event with this id.
    pub fn has_event(&self, id: EventId) -> bool {
        self.position.contains_key(&id)
    }

    /// The steps a person may record next, at `now_ms`, in the order a form lists them:
    /// the event types the status table allows whose other conditions hold too (a
    /// judicial request needs an agreement and none waiting, a petition is extended once,
    /// re-examination is asked for within its window…). Asked of [`Folder::check`] itself,
    /// so a step offered is a step the command accepts with its fields filled in.
    /// `Intake` and `Amend` are never listed: a record has one intake, and corrections
    /// have forms of their own.
    pub fn next_steps(&self, now_ms: u64) -> Vec<EventType> {
        crate::workflow::ALL_EVENT_TYPES
            .iter()
            .filter_map(|ty| Body::blank(*ty))
            .filter(|body| self.check(body, now_ms).is_ok())
            .map(|body| body.event_type())
            .collect()
    }

    /// Checks whether `body` may be applied now, without applying it.
    pub fn check(&self, body: &Body, at_ms: u64) -> Result<Option<Status>, Refusal> {
        let s = &self.state;
        let ty = body.event_type();
        if ty == EventType::Intake {
            return Err(Refusal::SecondIntake);
        }
        let next = transition(s.kind, s.status, ty).ok_or(Refusal::NotAllowed {
            kind: s.kind,
            status: s.status,
            event: ty,
        })?;
        match body {
            Body::JudicialRequest(_) => {
                if s.agreement.is_none() {
                    return Err(Refusal::NoAgreement);
                }
                if pending(&s.judicial) {
                    return Err(Refusal::JudicialPending);
                }
            }
            Body::JudicialResult(_) if !pending(&s.judicial) => {
                return Err(Refusal::NoJudicialRequest);
            }
            Body::ProtectionRequest(_) if pending(&s.protection) => {
                return Err(Refusal::ProtectionPending);
            }
            Body::ProtectionResult(_) if !pending(&s.protection) => {
                return Err(Refusal::NoProtectionRequest);
            }
            Body::Extend(e) => {
                if s.extension_days.is_some() {
                    return Err(Refusal::AlreadyExtended);
                }
                let max = self.rules.petition_extension_days_max;
                if e.days == 0 || e.days > max {
                    return Err(Refusal::ExtensionLength { days: e.days, max });
                }
            }
            Body::ReexamRequest(_) => {
                if s.reexam_requested_ms.is_some() {
                    return Err(Refusal::ReexamAlreadyRequested);
                }
                if let Some(reply) = s.reply_ms {
                    let due_ms = days_after(reply, self.rules.petition_reexam_request_days);
                    if at_ms > due_ms {
                        return Err(Refusal::ReexamWindowClosed { due_ms });
                    }
                }
            }
            Body::Receive(_) => {
                // A referral up that stands: not taken on since (taking it on clears the
                // outcome), and to a level that takes records on.
                let up = s.referral.as_ref().is_some_and(|r| {
                    matches!(
                        r.level,
                        crate::event::ReferLevel::Township | crate::event::ReferLevel::County
                    )
                });
                if s.outcome != Some(Status::Referred) || !up {
                    return Err(Refusal::NothingToReceive);
                }
            }
            Body::RecheckRequest(_) => {
                if s.recheck_requested_ms.is_some() {
                    return Err(Refusal::RecheckAlreadyRequested);
                }
                let Some(answered) = s.reexam_answered_ms else {
                    return Err(Refusal::RecheckWithoutReexam);
                };
                let due_ms = days_after(answered, self.rules.petition_recheck_request_days);
                if at_ms > due_ms {
                    return Err(Refusal::RecheckWindowClosed { due_ms });
                }
            }
            Body::Review(r) => {
                if let Some(outcome) = r.outcome
                    && !outcome.applies_to(s.kind)
                {
                    return Err(Refusal::OutcomeNotForKind {
                        kind: s.kind,
                        status: outcome,
                    });
                }
            }
            Body::Amend(a) => {
                if let Some(target) = a.target
                    && !self.position.contains_key(&target)
                {
                    return Err(Refusal::UnknownEvent(target));
                }
                match &a.change {
                    Change::PartyAdded(id) | Change::Party(crate::event::PartyFix { id, .. })
                        if !s.parties.contains_key(id) =>
                    {
                        return Err(Refusal::UnknownParty(*id));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(match next {
            Next::Stay => match body {
                Body::Review(r) => r.outcome,
                _ => None,
            },
            // A declined case (不予受理) reopened, closed or not, goes back to the
            // decision whether to accept it: it was never accepted.
            Next::To(Status::Reopened)
                if s.kind == Kind::Case && s.outcome == Some(Status::NotAccepted) =>
            {
                Some(Status::Registered)
            }
            Next::To(s) => Some(s),
        })
    }

    /// Adds the party map entry a `PartyAdded` amendment refers to. The party map is
    /// written before the event in the same change, so the fold sees it in the header.
    pub fn note_party(&mut self, id: PartyId, party: Party) {
        self.state.parties.entry(id).or_insert(party);
    }

    /// Folds one more event. Events must come in `(hlc, id)` order.
    pub fn push(&mut self, event: &Event) {
        let pos = self.ancestors.len();
        let mut anc = vec![0u64; pos / 64 + 1];
        for parent in &event.after {
            if let Some(&p) = self.position.get(parent) {
                // A parent that sorts later would mean a clock that broke causality; such a
                // link is ignored rather than trusted.
                if p < pos {
                    set_bit(&mut anc, p);
                    if let Some(pa) = self.ancestors.get(p) {
                        for (w, pw) in anc.iter_mut().zip(pa) {
                            *w |= pw;
                        }
                    }
                }
            }
        }
        self.ancestors.push(anc);
        self.position.insert(event.id, pos);
        self.state.last_at_ms = self.state.last_at_ms.max(event.at_ms);
        self.state.staff.insert(event.staff.clone());
        self.state
            .handlers
            .insert((event.node, event.staff.clone()));

        if let Body::Accept(a) | Body::Receive(a) = &event.body
            && let Some(number) = a.number
            && !self.state.numbers.contains(&number)
        {
            self.state.numbers.push(number);
        }
        if pos == 0
            && let Body::Intake(intake) = &event.body
        {
            self.state.entered_ms = event.hlc.wall_ms;
            self.state.matter = intake.matter.clone();
            self.state.applied += 1;
            return;
        }
        match self.check(&event.body, event.at_ms) {
            Err(refusal) => {
                // A decisive event refused because a concurrent decisive event sorts before
                // it is a contradiction when their outcomes differ, and a harmless repeat
                // (two offices closing the same case) when they agree.
                if let Some(outcome) = decisive_outcome(event.body.event_type()) {
                    let concurrent = self.concurrent_decisive(pos);
                    if !concurrent.is_empty() {
                        self.record_outcome_conflicts(pos, event.id, outcome, &concurrent);
                        return;
                    }
                }
                self.skipped.push((
                    false,
                    Skipped {
                        event: event.id,
                        refusal,
                    },
                    pos,
                ));
            }
            Ok(next) => {
                self.detect_conflicts(pos, event);
                self.apply(event, next);
                self.state.applied += 1;
            }
        }
    }

    pub(super) fn apply(&mut self, event: &Event, next: Option<Status>) {
        let at = event.at_ms;
        let s = &mut self.state;
        match &event.body {
            Body::Intake(_) => {}
            Body::Accept(_) => {
                s.accepted_ms = Some(at);
                s.decided_ms.get_or_insert(at);
            }
            Body::NotAccept(_) => {
                s.decided_ms.get_or_insert(at);
            }
            Body::Receive(_) => {
                // The office referred to takes it on (its number is kept above): the matter
                // is open again there, handled afresh by its own people, in a handling
                // period of its own.
                s.accepted_ms = Some(at);
                s.taken_on_at = s.referral.as_ref().map(|r| r.level);
                s.handler = None;
                s.assigned = None;
                s.extension_days = None;
            }
            Body::RecheckRequest(_) => s.recheck_requested_ms = Some(at),
            Body::RecheckAnswer(_) => s.recheck_answered_ms = Some(at),
            Body::Assign(a) => {
                s.handler = Some(a.to.clone());
                // The assignee works at the office that assigned them.
                s.handlers.insert((event.node, a.to.clone()));
                s.assigned = Some((event.node, a.to.clone()));
            }
            Body::Session(_) => s.sessions += 1,
            Body::Agreement(a) => {
                s.agreement = Some(AgreementState {
                    event: event.id,
                    at_ms: at,
                    form: a.form,
                    seek_confirmation: a.seek_confirmation,
                });
                s.resolved_ms = Some(at);
            }
            Body::JudicialRequest(_) => {
                s.judicial = Some(CourtState {
                    requested_ms: at,
                    urgent: false,
                    decided: None,
                });
            }
            Body::JudicialResult(o) => {
                if let Some(j) = &mut s.judicial {
                    j.decided = Some((at, o.granted));
                }
            }
            Body::ProtectionRequest(p) => {
                s.protection = Some(CourtState {
                    requested_ms: at,
                    urgent: p.urgent,
                    decided: None,
                });
            }
            Body::ProtectionResult(o) => {
                if let Some(p) = &mut s.protection {
                    p.decided = Some((at, o.granted));
                }
            }
            Body::Refer(r) => {
                s.referral = Some(r.clone());
                s.referred_ms = Some(at);
                s.decided_ms.get_or_insert(at);
            }
            Body::Resolve(_) => s.resolved_ms = Some(at),
            Body::Fail(_) => {}
            Body::Extend(e) => s.extension_days = Some(e.days),
            Body::Reply(_) => {
                s.reply_ms = Some(at);
                s.resolved_ms = Some(at);
            }
            Body::ReexamRequest(_) => s.reexam_requested_ms = Some(at),
            Body::ReexamAnswer(_) => s.reexam_answered_ms = Some(at),
            Body::FollowUp(_) => s.follow_ups += 1,
            Body::Satisfaction(r) => s.satisfaction = Some(r.rating),
            Body::Close(_) => s.closed_ms = Some(at),
            Body::Reopen(_) => {
                if s.kind == Kind::Petition {
                    // A reopened petition is handled afresh: a new handling period, and the
                    // earlier reply and re-examination no longer stand.
                    s.accepted_ms = Some(at);
                    s.extension_days = None;
                    s.reply_ms = None;
                    s.reexam_requested_ms = None;
                    s.reexam_answered_ms = None;
                    s.recheck_requested_ms = None;
                    s.recheck_answered_ms = None;
                }
                s.closed_ms = None;
            }
            Body::Amend(a) => match &a.change {
                Change::Category(c) => s.category = *c,
                Change::Risk(r) => s.risk = *r,
                Change::Restricted(b) => s.restricted_flag = *b,
                Change::Party(fix) => {
                    s.parties.insert(fix.id, fix.party.clone());
                }
                Change::Summary(n) if !n.note.is_empty() => s.summary = Some(n.note.clone()),
                Change::PartyAdded(_) | Change::Summary(_) | Change::Note(_) => {}
            },
            Body::Review(_) => {
                let pos = self.ancestors.len().saturating_sub(1);
                let ancestors = self.ancestors.get(pos).cloned().unwrap_or_default();
                for (settled, _, a, b) in &mut self.conflicts {
                    if bit(&ancestors, *a) && bit(&ancestors, *b) {
                        *settled = true;
                    }
                }
                for (settled, _, p) in &mut self.skipped {
                    if bit(&ancestors, *p) {
                        *settled = true;
                    }
                }
            }
        }
        // How the matter ended, for the county's figures.
        let outcome = match &event.body {
            Body::Agreement(_) | Body::Resolve(_) => Some(Some(Status::Resolved)),
            Body::Fail(_) => Some(Some(Status::Failed)),
            Body::Refer(_) => Some(Some(Status::Referred)),
            Body::NotAccept(_) => Some(Some(Status::NotAccepted)),
            Body::Reply(_) => Some(Some(Status::Replied)),
            Body::ReexamAnswer(_) => Some(Some(Status::Reexamined)),
            Body::RecheckAnswer(_) => Some(Some(Status::Rechecked)),
            Body::Reopen(_) | Body::Receive(_) => Some(None),
            Body::Review(_) => next.filter(|s| is_outcome(*s)).map(Some),
            _ => None,
        };
        if let Some(outcome) = outcome {
            self.state.outcome = outcome;
        }
        if let Some(status) = next {
            self.state.status = status;
        }
    }

    /// Ends the fold: open contradictions and deadlines.
    pub fn finish(mut self) -> Fold {
        self.state.conflicts = self
            .conflicts
            .into_iter()
            .filter(|(settled, ..)| !settled)
            .map(|(_, c, ..)| c)
            .collect();
        self.state.skipped = self
            .skipped
            .into_iter()
            .filter(|(settled, ..)| !settled)
            .map(|(_, s, _)| s)
            .collect();
        self.state.deadlines = deadlines(&self.state, self.rules);
        self.state
    }
}

/// The statuses that say how a matter ended (see `Fold::outcome`).
fn is_outcome(status: Status) -> bool {
    matches!(
        status,
        Status::Resolved
            | Status::Failed
            | Status::Referred
            | Status::NotAccepted
            | Status::Replied
            | Status::Reexamined
            | Status::Rechecked
    )
}

//! What the change rules check of a record's changes (see `rules`): a first change makes a
//! whole, well-formed record; a later one adds one event, and perhaps the party it names.

use super::*;

/// The root fields of a record, as its first change writes them.
pub(super) const ROOT_KEYS: [&str; 12] = [
    "schema",
    "kind",
    "id",
    "jurisdictions",
    "created_ms",
    "category",
    "risk",
    "restricted",
    "channel",
    "parties",
    "summary",
    "events",
];

/// A record's root as its first change writes it (see `rules`), read from the change's
/// own operations. Field for field the `Header` and the event list; any other field is
/// refused.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Created {
    #[allow(dead_code)]
    schema: u64,
    kind: Kind,
    id: RecordId,
    jurisdictions: Vec<VillageCode>,
    created_ms: u64,
    #[allow(dead_code)]
    category: Category,
    #[allow(dead_code)]
    risk: Risk,
    #[allow(dead_code)]
    restricted: bool,
    channel: Option<Channel>,
    parties: BTreeMap<String, Party>,
    summary: String,
    events: Vec<serde_json::Value>,
}

/// The change rules' check of a record's first change (see `rules`), on the record it
/// writes: a whole record of a schema this build knows, within its bounds, holding
/// exactly one intake event authored by `signer` and stamped no earlier than the change.
/// Returns the record and its villages, for the signature's claim.
pub(crate) fn check_created(
    root: serde_json::Value,
    signer: NodeId,
    time_ms: u64,
) -> Result<(RecordId, Vec<VillageCode>), RuleError> {
    let content = |e: &dyn std::fmt::Display| RuleError::Content(e.to_string());
    match root.get("schema").and_then(serde_json::Value::as_u64) {
        Some(1..=SCHEMA_VERSION) => {}
        Some(found) if found > SCHEMA_VERSION => return Err(RuleError::Schema(found)),
        _ => return Err(RuleError::Content("schema version".into())),
    }
    // The record's reader asks for every field (an absent channel too).
    if let Some(missing) = ROOT_KEYS.iter().find(|k| root.get(**k).is_none()) {
        return Err(RuleError::Content(format!("no {missing} field")));
    }
    // The parties are read strictly (`party_of`), apart from the rest.
    let mut root = root;
    let parties_form = root
        .get_mut("parties")
        .map(|p| std::mem::replace(p, serde_json::Value::Object(Default::default())));
    let mut header: Created = serde_json::from_value(root).map_err(|e| content(&e))?;
    let Some(serde_json::Value::Object(parties)) = parties_form else {
        return Err(RuleError::Content("the parties are not a map".into()));
    };
    header.parties = parties
        .into_iter()
        .map(|(key, value)| Ok((key, crate::rules::party_of(&value)?)))
        .collect::<Result<_, RuleError>>()?;
    let kind_matches = matches!(
        (header.kind, header.id),
        (Kind::Case, RecordId::Case(_)) | (Kind::Petition, RecordId::Petition(_))
    );
    if !kind_matches || (header.kind == Kind::Petition) != header.channel.is_some() {
        return Err(RuleError::Content("kind, id and channel disagree".into()));
    }
    let villages: std::collections::BTreeSet<_> = header.jurisdictions.iter().collect();
    if header.jurisdictions.is_empty()
        || header.jurisdictions.len() > JURISDICTIONS_MAX
        || villages.len() != header.jurisdictions.len()
    {
        return Err(RuleError::Bounds("villages".into()));
    }
    if header.parties.len() > PARTIES_MAX {
        return Err(RuleError::Bounds("parties".into()));
    }
    for party in parse_parties(header.parties)
        .map_err(|e| content(&e))?
        .values()
    {
        party.check().map_err(|e| content(&e))?;
    }
    check_text("summary", &header.summary, SUMMARY_CHARS_MAX, true).map_err(|e| content(&e))?;
    let [event] = <[serde_json::Value; 1]>::try_from(header.events)
        .map_err(|_| RuleError::Shape("a record starts with exactly one event".into()))?;
    let event = crate::rules::event_of(event)?;
    if !matches!(event.body, Body::Intake(_)) || !event.after.is_empty() {
        return Err(RuleError::Shape("a record starts with its intake".into()));
    }
    if event.at_ms != header.created_ms {
        return Err(RuleError::Time(
            "the intake is not when the record was received".into(),
        ));
    }
    check_event(&event, signer, time_ms)?;
    if let Body::Intake(crate::event::Intake {
        matter: Some(matter),
        ..
    }) = &event.body
    {
        matter.check_for(header.kind).map_err(|e| content(&e))?;
    }
    Ok((header.id, header.jurisdictions))
}

/// The change rules' check of what a later change adds (see `rules`), on its own: the new
/// event, and the party it may add (its key and the party).
pub(crate) fn check_entry(
    added: &Event,
    party: Option<(&String, &Party)>,
    signer: NodeId,
    time_ms: u64,
) -> Result<(), RuleError> {
    let content = |e: &dyn std::fmt::Display| RuleError::Content(e.to_string());
    if matches!(added.body, Body::Intake(_)) {
        return Err(RuleError::Shape("a second intake".into()));
    }
    check_event(added, signer, time_ms)?;
    if let Some((key, party)) = party {
        let id: PartyId = key.parse().map_err(|e| content(&e))?;
        let named = matches!(
            &added.body,
            Body::Amend(Amend { change: Change::PartyAdded(p), .. }) if *p == id
        );
        if !named {
            return Err(RuleError::Shape("a party that no event names".into()));
        }
        party.check().map_err(|e| content(&e))?;
    } else if matches!(
        &added.body,
        Body::Amend(Amend {
            change: Change::PartyAdded(_),
            ..
        })
    ) {
        return Err(RuleError::Shape("an added party that is not there".into()));
    }
    Ok(())
}

/// What every event a change adds must satisfy: its author's node signed it, its fields
/// pass their checks, and its stamps agree with the change's time.
fn check_event(event: &Event, signer: NodeId, time_ms: u64) -> Result<(), RuleError> {
    if event.node != signer {
        return Err(RuleError::Author);
    }
    event
        .body
        .check()
        .map_err(|e| RuleError::Content(e.to_string()))?;
    check_text(
        "display name",
        &event.by,
        crate::model::limits::NAME_CHARS_MAX,
        false,
    )
    .map_err(|e| RuleError::Content(e.to_string()))?;
    if event.after.len() > AFTER_MAX {
        return Err(RuleError::Bounds("events seen before".into()));
    }
    if event.hlc.wall_ms < time_ms {
        return Err(RuleError::Time("stamped before the change was made".into()));
    }
    if event.at_ms > time_ms.saturating_add(FUTURE_TOLERANCE_MS) {
        return Err(RuleError::Time("happened after the change was made".into()));
    }
    Ok(())
}

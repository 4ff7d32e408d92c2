//! The statutory deadlines of a folded record, and whether each was met.

use super::*;

pub(super) fn deadlines(s: &Fold, rules: &Deadlines) -> Vec<Deadline> {
    let mut out = Vec::new();
    match s.kind {
        Kind::Petition => {
            out.push(Deadline {
                kind: DeadlineKind::PetitionAccept,
                due_ms: days_after(s.received_ms, rules.petition_accept_days),
                met_ms: s.decided_ms,
            });
            if let Some(accepted) = s.accepted_ms {
                let days = rules
                    .petition_handle_days
                    .saturating_add(s.extension_days.unwrap_or(0));
                let met = match (s.reply_ms, s.referred_ms) {
                    (Some(r), _) => Some(r),
                    (None, Some(r)) if r >= accepted => Some(r),
                    _ => None,
                };
                out.push(Deadline {
                    kind: DeadlineKind::PetitionHandle,
                    due_ms: days_after(accepted, days),
                    met_ms: met,
                });
            }
            if let Some(reply) = s.reply_ms {
                out.push(Deadline {
                    kind: DeadlineKind::ReexamRequestWindow,
                    due_ms: days_after(reply, rules.petition_reexam_request_days),
                    met_ms: s.reexam_requested_ms,
                });
            }
            if let Some(requested) = s.reexam_requested_ms {
                out.push(Deadline {
                    kind: DeadlineKind::ReexamAnswer,
                    due_ms: days_after(requested, rules.petition_reexam_answer_days),
                    met_ms: s.reexam_answered_ms,
                });
            }
            if let Some(answered) = s.reexam_answered_ms {
                out.push(Deadline {
                    kind: DeadlineKind::RecheckRequestWindow,
                    due_ms: days_after(answered, rules.petition_recheck_request_days),
                    met_ms: s.recheck_requested_ms,
                });
            }
            if let Some(requested) = s.recheck_requested_ms {
                out.push(Deadline {
                    kind: DeadlineKind::RecheckAnswer,
                    due_ms: days_after(requested, rules.petition_recheck_answer_days),
                    met_ms: s.recheck_answered_ms,
                });
            }
        }
        Kind::Case => {
            if let Some(a) = &s.agreement
                && a.seek_confirmation
            {
                out.push(Deadline {
                    kind: DeadlineKind::JudicialConfirmation,
                    due_ms: days_after(a.at_ms, rules.judicial_confirmation_days),
                    met_ms: s.judicial.as_ref().map(|j| j.requested_ms),
                });
            }
        }
    }
    if let Some(p) = &s.protection {
        let hours = if p.urgent {
            rules.protection_order_urgent_hours
        } else {
            rules.protection_order_hours
        };
        out.push(Deadline {
            kind: DeadlineKind::ProtectionOrder,
            due_ms: hours_after(p.requested_ms, hours),
            met_ms: p.decided.map(|(at, _)| at),
        });
    }
    out
}

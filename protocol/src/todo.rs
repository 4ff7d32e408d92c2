//! 我的待办: what is due from a person at an office, most urgent first.
//!
//! Built from the records' views, at a moment, for a desk (the office's node, the person,
//! whether they review for the township). An office's work is the open records someone at
//! that office has recorded on; on those it lists the statutory deadlines still to meet
//! (overdue first), the last days of the parties' judicial-confirmation window, and the
//! follow-up visit due after an agreement, a settlement, a reply or a referral. Beside
//! them: the records assigned to the person, the referrals waiting at this office (a
//! township's or the county's) and, for a reviewer, the records needing review.
//!
//! Imported history never appears: a deadline or a visit that fell due before the record
//! was entered on a node (a ledger copied in afterwards) is not work due today.

use serde::{Deserialize, Serialize};

use crate::deadline::{DeadlineKind, DeadlineState, Deadlines, days_after};
use crate::division::Division;
use crate::event::ReferLevel;
use crate::id::{NodeId, RecordId, StaffId};
use crate::view::{View, Viewer};
use crate::workflow::Status;

/// Who the list is for.
#[derive(Debug, Clone, Copy)]
pub struct Desk<'a> {
    /// The office's node.
    pub node: &'a NodeId,
    /// The office's division (its certificate's).
    pub division: Division,
    /// The person's account.
    pub staff: &'a StaffId,
    /// The township this person reviews for (see [`Viewer::reviews_for`]).
    pub reviews_for: Option<Division>,
}

/// Why a record is on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Why {
    /// A statutory deadline of the office, still open or overdue.
    Deadline {
        /// Which.
        kind: DeadlineKind,
        /// Where it stands.
        state: DeadlineState,
    },
    /// The parties' judicial-confirmation window closes soon: tell them.
    ConfirmationClosing {
        /// Where it stands.
        state: DeadlineState,
    },
    /// The follow-up visit is due (回访到期).
    FollowUp {
        /// The day it fell due.
        due_ms: u64,
    },
    /// Assigned to this person.
    Assigned,
    /// Referred to this office and not taken up here yet.
    Referred,
    /// Contradictory entries to settle (for a reviewer).
    Review,
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The record.
    pub record: RecordId,
    /// Why it is here.
    pub why: Why,
    /// When it falls (or fell) due, for the dated items.
    pub due_ms: Option<u64>,
}

impl Item {
    /// The order of the list: dated items by due time (overdue first), then the undated
    /// ones (review, referrals waiting, assignments).
    fn rank(&self) -> (u8, u64, u8) {
        let kind = match self.why {
            Why::Review => 0,
            Why::Referred => 1,
            Why::Assigned => 2,
            _ => 3,
        };
        match self.due_ms {
            Some(due) => (0, due, kind),
            None => (1, 0, kind),
        }
    }
}

/// The statuses after which the office visits the parties again.
fn awaits_follow_up(status: Status) -> bool {
    matches!(
        status,
        Status::Resolved
            | Status::Referred
            | Status::Replied
            | Status::Reexamined
            | Status::Rechecked
    )
}

/// What is due from the person at `desk`, at `now_ms`, most urgent first.
pub fn todo<'v>(
    views: impl IntoIterator<Item = &'v View>,
    desk: &Desk<'_>,
    rules: &Deadlines,
    now_ms: u64,
) -> Vec<Item> {
    let viewer = Viewer {
        node: desk.node,
        staff: desk.staff,
        reviews_for: desk.reviews_for,
    };
    let mut out = Vec::new();
    for view in views {
        let c = view.common();
        if !c.visible_to(&viewer) {
            continue;
        }
        let record = view.id();
        let mut push = |why, due_ms| {
            out.push(Item {
                record,
                why,
                due_ms,
            })
        };
        let ours = c.handlers.iter().any(|h| h.node == *desk.node);
        // A closed record owes nothing (a protection order's result cannot be recorded
        // after closing).
        if ours && c.status != Status::Closed {
            for d in &c.deadlines {
                // History: due before the record was entered here.
                if d.due_ms < c.entered_ms {
                    continue;
                }
                let state = d.state(now_ms);
                match (d.kind.is_parties_window(), state) {
                    (false, DeadlineState::Open { .. } | DeadlineState::Overdue { .. }) => {
                        push(
                            Why::Deadline {
                                kind: d.kind,
                                state,
                            },
                            Some(d.due_ms),
                        );
                    }
                    (true, DeadlineState::Open { left_ms })
                        if d.kind == DeadlineKind::JudicialConfirmation
                            && left_ms
                                <= u64::from(rules.confirmation_reminder_days) * 86_400_000 =>
                    {
                        push(Why::ConfirmationClosing { state }, Some(d.due_ms));
                    }
                    _ => {}
                }
            }
            if awaits_follow_up(c.status) {
                let anchor = match c.status {
                    Status::Referred => c.referred_ms,
                    _ => c.resolved_ms,
                };
                if let Some(anchor) = anchor {
                    let due = days_after(anchor, rules.follow_up_days);
                    if now_ms >= due && due >= c.entered_ms {
                        push(Why::FollowUp { due_ms: due }, Some(due));
                    }
                }
            }
        }
        // A referred record is work for the office it was referred to, once assigned there.
        if (c.status.is_open() || c.status == Status::Referred)
            && c.assigned
                .as_ref()
                .is_some_and(|a| a.node == *desk.node && a.staff == *desk.staff)
        {
            push(Why::Assigned, None);
        }
        // Referred to this level and not taken up here since.
        let level = match desk.division {
            Division::Township(_) => Some(ReferLevel::Township),
            Division::County(_) => Some(ReferLevel::County),
            Division::Village(_) => None,
        };
        if c.status == Status::Referred
            && level.is_some()
            && c.referral.as_ref().map(|r| r.level) == level
            && !ours
        {
            push(Why::Referred, None);
        }
        if c.needs_review
            && desk
                .reviews_for
                .is_some_and(|t| c.jurisdictions.iter().any(|v| t.covers(*v)))
        {
            push(Why::Review, None);
        }
    }
    out.sort_by_key(Item::rank);
    out
}

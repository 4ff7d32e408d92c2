//! Statutory deadlines, as configurable defaults.
//!
//! - 信访工作条例 (2022): decide whether to accept a petition within 15 days of receipt;
//!   handle it within 60 days of acceptance, extendable once by up to 30 days; the
//!   petitioner may ask for re-examination within 30 days of the reply, and it is answered
//!   within 30 days.
//! - 人民调解法: the parties may apply for judicial confirmation within 30 days of the
//!   agreement taking effect.
//! - 反家庭暴力法: a court decides on a protection order within 72 hours, 24 when urgent.
//!
//! Periods count calendar days from the moment of the anchoring event. A county that counts
//! working days or whose rules change sets its own figures in the node's configuration.

use serde::{Deserialize, Serialize};

const DAY_MS: u64 = 86_400_000;
const HOUR_MS: u64 = 3_600_000;

/// The periods the fold uses. `Default` gives the statutory defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Deadlines {
    /// Days to decide whether to accept a petition (15).
    pub petition_accept_days: u32,
    /// Days to handle an accepted petition (60).
    pub petition_handle_days: u32,
    /// The longest single extension of the handling period, in days (30).
    pub petition_extension_days_max: u32,
    /// Days the petitioner has to ask for re-examination after the reply (30).
    pub petition_reexam_request_days: u32,
    /// Days to answer a re-examination (30).
    pub petition_reexam_answer_days: u32,
    /// Days the petitioner has to ask the level above to review the re-examination
    /// opinion (复核, 30).
    pub petition_recheck_request_days: u32,
    /// Days for the level above to give its review opinion (30).
    pub petition_recheck_answer_days: u32,
    /// Days after an agreement within which judicial confirmation may be sought (30).
    pub judicial_confirmation_days: u32,
    /// Hours for a court to decide a protection order (72).
    pub protection_order_hours: u32,
    /// Hours for an urgent protection order (24).
    pub protection_order_urgent_hours: u32,
    /// Days after an agreement, a settlement, a reply or a referral when the office visits
    /// the parties again (回访): the to-do list shows it from that day (15). The office's
    /// own practice, not a statute: each county sets its own.
    pub follow_up_days: u32,
    /// Days before the parties' judicial-confirmation window closes when the to-do list
    /// reminds the office to tell them (5).
    pub confirmation_reminder_days: u32,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            petition_accept_days: 15,
            petition_handle_days: 60,
            petition_extension_days_max: 30,
            petition_reexam_request_days: 30,
            petition_reexam_answer_days: 30,
            petition_recheck_request_days: 30,
            petition_recheck_answer_days: 30,
            judicial_confirmation_days: 30,
            protection_order_hours: 72,
            protection_order_urgent_hours: 24,
            follow_up_days: 15,
            confirmation_reminder_days: 5,
        }
    }
}

/// `days` after `from_ms`.
pub fn days_after(from_ms: u64, days: u32) -> u64 {
    from_ms.saturating_add(u64::from(days).saturating_mul(DAY_MS))
}

/// `hours` after `from_ms`.
pub fn hours_after(from_ms: u64, hours: u32) -> u64 {
    from_ms.saturating_add(u64::from(hours).saturating_mul(HOUR_MS))
}

crate::model::coded!(
    /// What a deadline is for.
    DeadlineKind, "deadline kind", {
        /// Decide whether to accept a petition.
        PetitionAccept = "petition_accept", "受理期限", "acceptance decision";
        /// Handle an accepted petition.
        PetitionHandle = "petition_handle", "办理期限", "handling";
        /// The petitioner's window to ask for re-examination (informational: it is theirs to
        /// use, so it never goes overdue).
        ReexamRequestWindow = "reexam_request_window", "复查申请期限", "re-examination window";
        /// Answer a re-examination.
        ReexamAnswer = "reexam_answer", "复查答复期限", "re-examination answer";
        /// The petitioner's window to ask the level above for a review (informational).
        RecheckRequestWindow = "recheck_request_window", "复核申请期限", "review request window";
        /// The level above answers the review.
        RecheckAnswer = "recheck_answer", "复核答复期限", "review answer";
        /// The window to apply for judicial confirmation of an agreement.
        JudicialConfirmation = "judicial_confirmation", "司法确认申请期限", "judicial confirmation";
        /// A court's decision on a protection order.
        ProtectionOrder = "protection_order", "保护令裁定期限", "protection order decision";
    }
);

impl DeadlineKind {
    /// The oldest record schema whose steps meet or use the deadline: 2 for 复核's (the
    /// request window and the answer), 1 for the rest.
    pub fn schema(self) -> u64 {
        match self {
            DeadlineKind::RecheckRequestWindow | DeadlineKind::RecheckAnswer => 2,
            _ => 1,
        }
    }

    /// Whether the period is the parties' to use, not the office's to meet: the
    /// petitioner's window to ask for re-examination and the parties' window to apply for
    /// judicial confirmation. Left unused, such a window lapses; it never goes overdue.
    pub fn is_parties_window(self) -> bool {
        matches!(
            self,
            DeadlineKind::ReexamRequestWindow
                | DeadlineKind::RecheckRequestWindow
                | DeadlineKind::JudicialConfirmation
        )
    }
}

/// Where a deadline stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DeadlineState {
    /// Met (`late`: after it fell due).
    Met {
        /// Met after it fell due.
        late: bool,
    },
    /// Not met yet, and `left_ms` until it falls due.
    Open {
        /// Milliseconds left.
        left_ms: u64,
    },
    /// The office's deadline passed unmet, `by_ms` ago.
    Overdue {
        /// Milliseconds since it fell due.
        by_ms: u64,
    },
    /// The parties' window passed unused: nothing the office failed to do.
    Lapsed,
}

/// One deadline of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// What it is for.
    pub kind: DeadlineKind,
    /// When it falls due (milliseconds since the epoch).
    pub due_ms: u64,
    /// When it was met, if it was.
    pub met_ms: Option<u64>,
}

impl Deadline {
    /// Whether the deadline has passed unmet at `now_ms`. A window that is the parties' to
    /// use (re-examination, judicial confirmation) is never overdue.
    pub fn is_overdue(&self, now_ms: u64) -> bool {
        matches!(self.state(now_ms), DeadlineState::Overdue { .. })
    }

    /// Where the deadline stands at `now_ms`.
    pub fn state(&self, now_ms: u64) -> DeadlineState {
        match self.met_ms {
            Some(met) => DeadlineState::Met {
                late: met > self.due_ms,
            },
            None if now_ms <= self.due_ms => DeadlineState::Open {
                left_ms: self.due_ms - now_ms,
            },
            None if self.kind.is_parties_window() => DeadlineState::Lapsed,
            None => DeadlineState::Overdue {
                by_ms: now_ms - self.due_ms,
            },
        }
    }

    /// Whether it was met late.
    pub fn was_late(&self) -> bool {
        self.met_ms.is_some_and(|met| met > self.due_ms)
    }

    /// Milliseconds left until it falls due (negative when past), or `None` once met.
    pub fn remaining_ms(&self, now_ms: u64) -> Option<i128> {
        match self.met_ms {
            Some(_) => None,
            None => Some(i128::from(self.due_ms) - i128::from(now_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statutory_defaults() {
        let d = Deadlines::default();
        assert_eq!(d.petition_accept_days, 15);
        assert_eq!(d.petition_handle_days, 60);
        assert_eq!(d.petition_extension_days_max, 30);
        assert_eq!(d.petition_reexam_request_days, 30);
        assert_eq!(d.petition_reexam_answer_days, 30);
        assert_eq!(d.judicial_confirmation_days, 30);
        assert_eq!(d.protection_order_hours, 72);
        assert_eq!(d.protection_order_urgent_hours, 24);
    }

    #[test]
    fn a_window_that_belongs_to_the_parties_is_never_overdue() {
        let window = Deadline {
            kind: DeadlineKind::ReexamRequestWindow,
            due_ms: 10,
            met_ms: None,
        };
        assert!(!window.is_overdue(1_000));
        let handle = Deadline {
            kind: DeadlineKind::PetitionHandle,
            ..window
        };
        assert!(handle.is_overdue(1_000));
        assert!(!handle.is_overdue(10));
        // The judicial-confirmation window is the parties' too: it lapses.
        let confirmation = Deadline {
            kind: DeadlineKind::JudicialConfirmation,
            ..window
        };
        assert!(!confirmation.is_overdue(1_000));
        assert_eq!(confirmation.state(1_000), DeadlineState::Lapsed);
        assert_eq!(window.state(1_000), DeadlineState::Lapsed);
        assert_eq!(handle.state(1_000), DeadlineState::Overdue { by_ms: 990 });
        assert_eq!(handle.state(4), DeadlineState::Open { left_ms: 6 });
        let met = Deadline {
            met_ms: Some(11),
            ..handle
        };
        assert_eq!(met.state(1_000), DeadlineState::Met { late: true });
    }
}

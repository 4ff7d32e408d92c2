//! Where a record stands: its status, the vocabulary the workflow's table (`workflow`),
//! the events (`event`) and the fold share.

use crate::model::{Kind, coded};

coded!(
    /// Where a record stands.
    Status, "status", {
        /// 登记: taken in, not yet accepted.
        Registered = "registered", "登记", "registered";
        /// 受理.
        Accepted = "accepted", "受理", "accepted";
        /// 不予受理 (petitions).
        NotAccepted = "not_accepted", "不予受理", "not accepted";
        /// 调解中 (cases).
        Mediating = "mediating", "调解中", "mediating";
        /// 办理中 (petitions).
        Handling = "handling", "办理中", "in hand";
        /// 调解成功 (cases).
        Resolved = "resolved", "调解成功", "resolved";
        /// 调解不成 (cases).
        Failed = "failed", "调解不成", "failed";
        /// 移交: referred upward, to a court or to another organisation.
        Referred = "referred", "移交", "referred";
        /// 已答复 (petitions).
        Replied = "replied", "已答复", "replied";
        /// 复查中 (petitions).
        Reexamining = "reexamining", "复查中", "under re-examination";
        /// 已复查 (petitions).
        Reexamined = "reexamined", "已复查", "re-examined";
        /// 复核中 (petitions, record schema 2): the next level reviews the re-examination.
        Rechecking = "rechecking", "复核中", "under review by the level above";
        /// 已复核 (petitions, record schema 2).
        Rechecked = "rechecked", "已复核", "reviewed by the level above";
        /// 已回访.
        FollowedUp = "followed_up", "已回访", "followed up";
        /// 结案.
        Closed = "closed", "结案", "closed";
        /// 重新办理.
        Reopened = "reopened", "重新办理", "reopened";
    }
);

impl Status {
    /// Whether the matter is still being worked on (not settled, closed or passed on).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Registered
                | Status::Accepted
                | Status::Mediating
                | Status::Handling
                | Status::Reopened
                | Status::Reexamining
                | Status::Rechecking
        )
    }

    /// Whether a record of `kind` can have this status.
    pub fn applies_to(self, kind: Kind) -> bool {
        match kind {
            Kind::Case => !matches!(
                self,
                Status::Handling
                    | Status::Replied
                    | Status::Reexamining
                    | Status::Reexamined
                    | Status::Rechecking
                    | Status::Rechecked
            ),
            Kind::Petition => {
                !matches!(self, Status::Mediating | Status::Resolved | Status::Failed)
            }
        }
    }
}

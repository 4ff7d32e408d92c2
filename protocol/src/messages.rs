//! The Chinese a worker reads for each refusal of a command: one catalogue beside the
//! typed errors (whose `Display` is the English), naming the field to fix in the words the
//! forms use.

use crate::fold::Refusal;
use crate::model::FieldError;
use crate::record::CommandError;

/// The Chinese name of a field, as the forms label it.
pub fn field_zh(field: &str) -> &str {
    match field {
        "summary" => "摘要",
        "note" => "说明",
        "reason" => "原因",
        "reply" => "答复内容",
        "place" => "地点",
        "session record" => "调解经过",
        "agreement terms" | "terms" => "协议内容",
        "court" => "法院",
        "referred to" | "to" => "移交单位",
        "review note" => "审核意见",
        "rating" => "满意度",
        "days" => "延期天数",
        "party name" | "name" => "当事人姓名",
        "party contact" | "contact" => "联系方式",
        "villages" | "village" => "村",
        "category" => "类别",
        "risk" => "风险等级",
        "channel" => "来源",
        "role" => "当事人身份",
        "form" => "协议形式",
        "level" => "移交层级",
        "staff" => "承办人账号",
        "date" | "at_ms" | "received_ms" => "日期",
        "dispute category" => "纠纷类别",
        "risk level" => "风险等级",
        "channel of a petition" | "petition channel" => "信访来源",
        "party role" => "当事人身份",
        "agreement form" => "协议形式",
        "referral level" => "移交层级",
        "record status" | "status" => "状态",
        "sex" | "party sex" => "性别",
        "party age" | "age" => "年龄",
        "party ethnicity" | "ethnicity" => "民族",
        "party occupation" | "occupation" => "职业或工作单位",
        "party address" | "address" => "住所",
        "party ID number" | "id_number" => "身份证号码",
        "source" => "纠纷来源",
        "amount at stake" | "amount" => "涉及金额",
        "people involved" | "people" => "涉及人数",
        "petition type" => "信访类型",
        "case number" => "案件编号",
        "display name" => "记录人姓名",
        other => other,
    }
}

impl FieldError {
    /// The refusal in Chinese, naming the field.
    pub fn zh(&self) -> String {
        match self {
            FieldError::Empty { field } => format!("请填写“{}”。", field_zh(field)),
            FieldError::TooLong { field, len, max } => {
                format!("“{}”太长：{len}个字，最多{max}个字。", field_zh(field))
            }
            FieldError::Range {
                field,
                value,
                min,
                max,
            } => format!("“{}”应在{min}到{max}之间，填的是{value}。", field_zh(field)),
            FieldError::Code(e) => format!("“{}”的选项无效（{}）。", field_zh(e.kind), e.value),
            FieldError::Id(_) => "编号格式不对，请从列表中打开记录。".into(),
            FieldError::Format {
                field: "party ID number",
            } => "身份证号码应为18位（最后一位可以是X），或旧式15位数字。".into(),
            FieldError::Format { field } => format!("“{}”的格式不对。", field_zh(field)),
            FieldError::PetitionOnly { .. } => "矛盾纠纷不填信访类型、集体访或越级访。".into(),
        }
    }
}

impl Refusal {
    /// The refusal in Chinese: what the record's state does not allow, and why.
    pub fn zh(&self) -> String {
        match self {
            Refusal::NotAllowed {
                kind,
                status,
                event,
            } => format!(
                "此{}现在是“{}”，不能记录“{}”。请从页面列出的下一步中选择。",
                kind.label_zh(),
                status.label_zh(),
                event.label_zh()
            ),
            Refusal::NoAgreement => "申请司法确认前，须先记录调解协议。".into(),
            Refusal::JudicialPending => "已有一份司法确认申请在等待法院裁定。".into(),
            Refusal::NoJudicialRequest => "尚未申请司法确认，不能记录确认结果。".into(),
            Refusal::ProtectionPending => "已有一份人身安全保护令申请在等待法院裁定。".into(),
            Refusal::NoProtectionRequest => "尚未申请人身安全保护令，不能记录裁定。".into(),
            Refusal::AlreadyExtended => "办理期限已经延长过一次，不能再次延期。".into(),
            Refusal::ExtensionLength { days, max } => {
                format!("延期天数应为1到{max}天，填的是{days}天。")
            }
            Refusal::ReexamAlreadyRequested => "已经申请过复查，不能重复申请。".into(),
            Refusal::RecheckAlreadyRequested => "已经申请过复核，不能重复申请。".into(),
            Refusal::RecheckWithoutReexam => "还没有复查意见，不能申请复核。".into(),
            Refusal::RecheckWindowClosed { due_ms } => format!(
                "申请复核的期限（收到复查意见后30日）已于{}届满。",
                crate::stats::date_of(*due_ms)
            ),
            Refusal::ReexamWindowClosed { due_ms } => {
                format!("申请复查的期限已于{}届满。", crate::stats::date_of(*due_ms))
            }
            Refusal::OutcomeNotForKind { kind, status } => {
                format!("“{}”不是{}的状态。", status.label_zh(), kind.label_zh())
            }
            Refusal::UnknownEvent(_) => "要更正的记录条目不存在。".into(),
            Refusal::UnknownParty(_) => "要更正的当事人不存在。".into(),
            Refusal::SecondIntake => "每条记录只登记一次。".into(),
            Refusal::NothingToReceive => {
                "此记录没有移交乡镇（街道）或县级、尚待接收的移交。".into()
            }
            Refusal::NotReferredHere => {
                "此记录不是移交给本级的，只有移交所至的乡镇（街道）或县级才能接收。".into()
            }
        }
    }
}

impl CommandError {
    /// The refusal in Chinese. (Some refusals are written in both languages already; their
    /// text is returned as it is.)
    pub fn zh(&self) -> String {
        match self {
            CommandError::Field(e) => e.zh(),
            CommandError::Refused(r) => r.zh(),
            CommandError::InFuture { .. } => "日期不能晚于今天。".into(),
            CommandError::BeforeReceived { received_ms, .. } => format!(
                "日期不能早于收到日期（{}）。",
                crate::stats::date_of(*received_ms)
            ),
            CommandError::NoJurisdiction => "请填写事项所属的村。".into(),
            CommandError::TooManyJurisdictions => format!(
                "一条记录最多属于{}个村。",
                crate::model::limits::JURISDICTIONS_MAX
            ),
            CommandError::DuplicateJurisdiction(v) => format!("村 {v} 填了两次。"),
            CommandError::TooManyParties => {
                format!(
                    "一条记录最多{}名当事人。",
                    crate::model::limits::PARTIES_MAX
                )
            }
            CommandError::TooManyEvents => format!(
                "此记录已有{}条记录，已满；请另立新记录。",
                crate::model::limits::EVENTS_MAX
            ),
            CommandError::Channel => "信访事项须选择来源（来信、来访、电话、网上）。".into(),
            CommandError::SchemaNotAllowed { needed, allowed } => format!(
                "县里目前只启用到第{allowed}版记录格式，这项内容需要第{needed}版，尚未升级的办公室读不了，未保存。请先不填当事人详细信息、纠纷来源等新增项，或请县里在各办公室升级后启用第{needed}版。"
            ),
            CommandError::Document(_) => "记录文件无法读取，请联系运维人员。".into(),
            CommandError::Rules(_) => "本机程序出错，未保存任何内容，请联系运维人员。".into(),
            CommandError::ClockOutsideCertificate {
                now_ms,
                not_before_ms,
                not_after_ms,
            } => format!(
                "本机时钟显示 {}，不在本节点证书的有效期（{} 至 {}）内：请校正电脑的日期和时间后再录入。",
                crate::stats::date_of(*now_ms),
                crate::stats::date_of(*not_before_ms),
                crate::stats::date_of(*not_after_ms)
            ),
            CommandError::ClockBehind { now_ms, last_ms } => format!(
                "本机时钟显示 {}，早于本机上一次录入的时间 {}：请校正电脑的日期和时间，或请运维人员处理。",
                crate::stats::date_of(*now_ms),
                crate::stats::date_of(*last_ms)
            ),
            CommandError::RefusedUpstream { code } => format!(
                "此记录的一项修改已被上级节点拒收（{}），本机不能再修改此记录。请联系乡镇（街道）调解办公室，由上级重新登记需要补充的内容。",
                crate::quarantine::label(code).0
            ),
            CommandError::NotAuthorised { jurisdictions, .. } => format!(
                "本机无权登记或修改属于 {} 的记录：请由该村的调解办公室登记。",
                jurisdictions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("、")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::model::Kind;
    use crate::status::Status;

    /// Every Chinese message is Chinese: no English word of the forms' field names or the
    /// English refusals leaks into it.
    #[test]
    fn refusals_read_in_chinese_and_name_the_field() {
        let messages = [
            FieldError::Empty {
                field: "session record",
            }
            .zh(),
            FieldError::TooLong {
                field: "summary",
                len: 2_001,
                max: 2_000,
            }
            .zh(),
            FieldError::Range {
                field: "rating",
                value: 9,
                min: 1,
                max: 5,
            }
            .zh(),
            Refusal::NotAllowed {
                kind: Kind::Case,
                status: Status::Registered,
                event: EventType::Session,
            }
            .zh(),
            Refusal::ReexamWindowClosed {
                due_ms: 1_712_345_678_901,
            }
            .zh(),
            CommandError::InFuture {
                at_ms: 2,
                now_ms: 1,
            }
            .zh(),
            FieldError::Format {
                field: "party ID number",
            }
            .zh(),
            FieldError::PetitionOnly {
                field: "petition type",
            }
            .zh(),
            FieldError::Range {
                field: "party age",
                value: 200,
                min: 0,
                max: 130,
            }
            .zh(),
        ];
        assert_eq!(messages[0], "请填写“调解经过”。");
        assert_eq!(
            messages[3],
            "此矛盾纠纷现在是“登记”，不能记录“调解记录”。请从页面列出的下一步中选择。"
        );
        for m in &messages {
            // The ID number's check letter X is the one Latin letter a worker is told.
            assert!(
                !m.replace("是X", "")
                    .chars()
                    .any(|c| c.is_ascii_alphabetic()),
                "English in {m:?}"
            );
        }
    }
}

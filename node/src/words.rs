//! How periods, deadlines and dates read to a worker, in Chinese and in English: one
//! wording for the web pages and the command line.

use guihe_protocol::deadline::DeadlineState;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// A period as a worker counts it: whole days from a day up, whole hours below (each
/// rounded up, so that "2 days left" still holds the whole second day), and "under an
/// hour" below that.
pub fn span(ms: u64, zh: bool) -> String {
    match (ms, zh) {
        (ms, true) if ms >= DAY_MS => format!("{}天", ms.div_ceil(DAY_MS)),
        (ms, false) if ms >= DAY_MS => plural(ms.div_ceil(DAY_MS), "day"),
        (ms, true) if ms >= HOUR_MS => format!("{}小时", ms.div_ceil(HOUR_MS)),
        (ms, false) if ms >= HOUR_MS => plural(ms.div_ceil(HOUR_MS), "hour"),
        (_, true) => "不到1小时".into(),
        (_, false) => "under an hour".into(),
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Where a deadline stands, as a few words: 还剩2天, 逾期3天, 已办结, 已过期（当事人未申请）.
pub fn deadline(state: DeadlineState, zh: bool) -> String {
    match (state, zh) {
        (DeadlineState::Met { late: false }, true) => "已办结".into(),
        (DeadlineState::Met { late: true }, true) => "已办结（超期）".into(),
        (DeadlineState::Met { late: false }, false) => "met".into(),
        (DeadlineState::Met { late: true }, false) => "met late".into(),
        (DeadlineState::Open { left_ms }, true) => format!("还剩{}", span(left_ms, true)),
        (DeadlineState::Open { left_ms }, false) => format!("{} left", span(left_ms, false)),
        (DeadlineState::Overdue { by_ms }, true) => format!("逾期{}", span(by_ms, true)),
        (DeadlineState::Overdue { by_ms }, false) => {
            format!("overdue by {}", span(by_ms, false))
        }
        (DeadlineState::Lapsed, true) => "已过期（当事人未申请）".into(),
        (DeadlineState::Lapsed, false) => "lapsed (not used by the parties)".into(),
    }
}

/// When a deadline falls due, as a worker reads it: the day, and for a period counted in
/// hours (a protection order's 24 or 72) the hour too, Beijing time: 2026-03-05 14:00.
pub fn due(kind: guihe_protocol::deadline::DeadlineKind, ms: u64) -> String {
    let day = guihe_protocol::stats::date_of(ms);
    if kind != guihe_protocol::deadline::DeadlineKind::ProtectionOrder {
        return day;
    }
    let minutes = (ms / 60_000 + 8 * 60) % (24 * 60);
    format!("{day} {:02}:{:02}", minutes / 60, minutes % 60)
}

/// A date as Chinese documents write it, Beijing time: 2026年3月5日.
pub fn date_zh(ms: u64) -> String {
    let ymd = guihe_protocol::stats::date_of(ms);
    let mut parts = ymd.split('-').map(|p| p.trim_start_matches('0'));
    match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => format!("{y}年{m}月{d}日"),
        _ => ymd,
    }
}

/// An event's content as a sentence a worker reads (Chinese, or English), instead of its
/// field names.
pub fn sentence(body: &guihe_protocol::event::Body, zh: bool) -> String {
    sentence_named(body, zh, &std::collections::BTreeMap::new())
}

/// [`sentence`], naming an assigned colleague by their display name where `names` (by
/// account) has it.
fn sentence_named(
    body: &guihe_protocol::event::Body,
    zh: bool,
    names: &std::collections::BTreeMap<String, String>,
) -> String {
    use guihe_protocol::event::{AgreementForm, Body, Change};
    let t = |c: &str, e: &str| if zh { c.to_string() } else { e.to_string() };
    // A note after the sentence, if any.
    let then = |sentence: String, note: &str| {
        if note.trim().is_empty() {
            sentence
        } else if sentence.is_empty() {
            note.to_string()
        } else {
            format!("{sentence}{}{note}", if zh { "" } else { " " })
        }
    };
    let stop = if zh { "。" } else { "." };
    match body {
        Body::Intake(i) => match &i.matter {
            Some(m) => then(matter(m, zh), &i.note),
            None => i.note.clone(),
        },
        Body::Accept(a) | Body::Receive(a) => match a.number {
            Some(n) => then(
                if zh {
                    format!("编号：{}。", guihe_protocol::numbering::printed(n, ""))
                } else {
                    format!("Number {}/{}.", n.year, n.seq)
                },
                &a.note,
            ),
            None => a.note.clone(),
        },
        Body::Resolve(n) | Body::FollowUp(n) | Body::Close(n) | Body::ReexamRequest(n) => {
            n.note.clone()
        }
        Body::NotAccept(n) | Body::Fail(n) | Body::Reopen(n) => {
            then(t("原因：", "Reason: "), &n.note)
        }
        Body::Reply(n)
        | Body::ReexamAnswer(n)
        | Body::RecheckRequest(n)
        | Body::RecheckAnswer(n) => n.note.clone(),
        Body::Assign(a) => {
            let to = names
                .get(a.to.as_str())
                .map_or(a.to.as_str(), String::as_str);
            then(
                if zh {
                    format!("指派 {to} 承办。")
                } else {
                    format!("Assigned to {to}.")
                },
                &a.note,
            )
        }
        Body::Session(x) => {
            let place = if x.place.trim().is_empty() {
                t("主持调解：", "Mediation session: ")
            } else if zh {
                format!("在{}主持调解：", x.place)
            } else {
                format!("Mediation session at {}: ", x.place)
            };
            then(place, &x.note)
        }
        Body::Agreement(a) => {
            let form = match (a.form, zh) {
                (AgreementForm::Written, true) => "双方达成书面调解协议：",
                (AgreementForm::Oral, true) => "双方达成口头协议：",
                (AgreementForm::Written, false) => "Written agreement: ",
                (AgreementForm::Oral, false) => "Oral agreement: ",
            };
            let seek = if a.seek_confirmation {
                t(
                    "（双方拟申请司法确认）",
                    " (the parties will seek judicial confirmation)",
                )
            } else {
                String::new()
            };
            format!("{form}{}{seek}", a.terms)
        }
        Body::JudicialRequest(c) => then(
            if zh {
                format!("向{}申请司法确认{stop}", c.court)
            } else {
                format!("Judicial confirmation sought from {}.", c.court)
            },
            &c.note,
        ),
        Body::JudicialResult(o) => then(
            if o.granted {
                t(
                    "法院确认调解协议有效。",
                    "The court confirmed the agreement.",
                )
            } else {
                t("法院未予确认。", "The court did not confirm it.")
            },
            &o.note,
        ),
        Body::ProtectionRequest(p) => then(
            match (zh, p.urgent) {
                (true, true) => format!("向{}紧急申请人身安全保护令（24小时内裁定）。", p.court),
                (true, false) => format!("向{}申请人身安全保护令（72小时内裁定）。", p.court),
                (false, true) => format!(
                    "Urgent protection order sought from {} (24 hours).",
                    p.court
                ),
                (false, false) => format!("Protection order sought from {} (72 hours).", p.court),
            },
            &p.note,
        ),
        Body::ProtectionResult(o) => then(
            if o.granted {
                t(
                    "法院作出人身安全保护令。",
                    "The court issued the protection order.",
                )
            } else {
                t(
                    "法院驳回保护令申请。",
                    "The court refused the protection order.",
                )
            },
            &o.note,
        ),
        Body::Refer(r) => {
            if zh {
                format!("移交{}：{}。原因：{}", r.level.label_zh(), r.to, r.reason)
            } else {
                format!(
                    "Referred to {} ({}). Reason: {}",
                    r.to,
                    r.level.label_en(),
                    r.reason
                )
            }
        }
        Body::Extend(e) => {
            if zh {
                format!("办理期限延长{}天。原因：{}", e.days, e.reason)
            } else {
                format!("Extended by {} days. Reason: {}", e.days, e.reason)
            }
        }
        Body::Satisfaction(x) => then(
            if zh {
                format!("满意度{}分（满分5分）。", x.rating)
            } else {
                format!("Rated {} of 5.", x.rating)
            },
            &x.note,
        ),
        Body::Amend(a) => {
            let what = match &a.change {
                Change::Category(c) => {
                    if zh {
                        format!("类别改为{}", c.label_zh())
                    } else {
                        format!("category set to {}", c.label_en())
                    }
                }
                Change::Risk(r) => {
                    if zh {
                        format!("风险等级改为{}", r.label_zh())
                    } else {
                        format!("risk set to {}", r.label_en())
                    }
                }
                Change::Restricted(true) => t("设为限制查看", "restricted"),
                Change::Restricted(false) => t("取消限制查看", "no longer restricted"),
                Change::PartyAdded(_) => t("增加当事人", "a party added"),
                Change::Party(fix) => {
                    if zh {
                        format!("当事人信息更正为 {}", fix.party.name)
                    } else {
                        format!("party details corrected ({})", fix.party.name)
                    }
                }
                Change::Summary(n) => {
                    if zh {
                        format!("摘要更正为：{}", n.note)
                    } else {
                        format!("summary corrected: {}", n.note)
                    }
                }
                Change::Note(n) => n.note.clone(),
            };
            if zh {
                format!("更正：{what}。原因：{}", a.reason)
            } else {
                format!("Correction: {what}. Reason: {}", a.reason)
            }
        }
        Body::Review(r) => then(
            match r.outcome {
                Some(s) if zh => format!("审核结论：{}。", s.label_zh()),
                Some(s) => format!("Review settles on {}.", s.label_en()),
                None => t("审核：", "Review: "),
            },
            &r.note,
        ),
    }
}

/// A node's role, as the sync page and `guihe status` name it (the status report gives the
/// role's name, `Village`).
pub fn role(name: &str, zh: bool) -> String {
    let (c, e) = match name {
        "Village" => ("村级调解节点", "village office"),
        "Township" => ("乡镇（街道）节点", "township office"),
        "County" => ("县级节点", "county"),
        "Observer" => ("只读观察节点", "read-only observer"),
        other => (other, other),
    };
    if zh { c.into() } else { e.into() }
}

/// The display name of an entry's author: as this node knows the account where the entry
/// was made `here` (accounts never leave their node), else the name the entry carries
/// (record schema 2).
pub fn author<'a>(
    detail: &'a crate::api::Detail,
    here: Option<&guihe_protocol::id::NodeId>,
    e: &'a guihe_protocol::event::Event,
) -> Option<&'a str> {
    detail
        .display_names
        .get(e.staff.as_str())
        .filter(|_| here == Some(&e.node))
        .map(String::as_str)
        .or_else(|| Some(e.by.as_str()).filter(|by| !by.trim().is_empty()))
}

/// An entry as a sentence ([`sentence`]), naming colleagues by display name where the
/// entry was made `here`.
pub fn entry_sentence(
    detail: &crate::api::Detail,
    here: Option<&guihe_protocol::id::NodeId>,
    e: &guihe_protocol::event::Event,
    zh: bool,
) -> String {
    if here == Some(&e.node) {
        sentence_named(&e.body, zh, &detail.display_names)
    } else {
        sentence(&e.body, zh)
    }
}

/// "2026年3月5日 谭德明 记录的“调解协议”": an entry of a record as a worker names it. The
/// author shows by display name where the entry was made `here` and the node knows it.
pub fn entry(
    detail: &crate::api::Detail,
    here: Option<&guihe_protocol::id::NodeId>,
    id: &guihe_protocol::id::EventId,
    zh: bool,
) -> String {
    let Some(e) = detail.timeline.iter().find(|e| e.id == *id) else {
        return if zh { "一条记录" } else { "an entry" }.to_string();
    };
    let who = author(detail, here, e).unwrap_or(e.staff.as_str());
    if zh {
        format!(
            "{} {} 记录的“{}”",
            date_zh(e.at_ms),
            who,
            e.body.event_type().label_zh()
        )
    } else {
        format!(
            "the {} {} recorded on {}",
            e.body.event_type().label_en(),
            who,
            guihe_protocol::stats::date_of(e.at_ms)
        )
    }
}

/// Why two entries of a record contradict each other, in a sentence.
pub fn contradiction(
    detail: &crate::api::Detail,
    here: Option<&guihe_protocol::id::NodeId>,
    x: &guihe_protocol::fold::Conflict,
    zh: bool,
) -> String {
    use guihe_protocol::fold::ConflictAbout;
    let first = entry(detail, here, &x.first, zh);
    let second = entry(detail, here, &x.second, zh);
    match (zh, x.about) {
        (true, ConflictAbout::Outcome) => format!(
            "断网期间两处记录了不同的结果：{first}，与{second}。先记的结果暂时有效；请审核员在“审核”中确定结论。"
        ),
        (true, ConflictAbout::Field) => {
            format!("两处同时更正了同一项内容：{first}，与{second}。请审核员核对后确定。")
        }
        (false, ConflictAbout::Outcome) => format!(
            "While apart, two offices recorded different outcomes: {first}, and {second}. The first stands for now; a reviewer settles it."
        ),
        (false, ConflictAbout::Field) => format!(
            "Two offices corrected the same field at once: {first}, and {second}. A reviewer settles it."
        ),
    }
}

/// Why an entry of a record was kept but not applied, in a sentence.
pub fn not_applied(
    detail: &crate::api::Detail,
    here: Option<&guihe_protocol::id::NodeId>,
    x: &guihe_protocol::fold::Skipped,
    zh: bool,
) -> String {
    let what = entry(detail, here, &x.event, zh);
    if zh {
        format!("{what}未能采用：{}", x.refusal.zh())
    } else {
        format!("{what} was kept but not applied: {}", x.refusal)
    }
}

/// The matter's particulars taken at intake, as one sentence: source, place, amount,
/// people, and for a petition its type and flags. Empty if none was given.
pub fn matter(m: &guihe_protocol::model::Matter, zh: bool) -> String {
    let mut parts = Vec::new();
    if let Some(source) = m.source {
        parts.push(if zh {
            format!("来源：{}", source.label_zh())
        } else {
            format!("source: {}", source.label_en())
        });
    }
    if !m.place.trim().is_empty() {
        parts.push(if zh {
            format!("地点：{}", m.place.trim())
        } else {
            format!("place: {}", m.place.trim())
        });
    }
    if let Some(amount) = m.amount_yuan {
        parts.push(if zh {
            format!("涉及金额：{amount}元")
        } else {
            format!("amount at stake: {amount} yuan")
        });
    }
    if let Some(people) = m.people {
        parts.push(if zh {
            format!("涉及人数：{people}人")
        } else {
            format!("people involved: {people}")
        });
    }
    if let Some(ty) = m.petition_type {
        parts.push(if zh {
            format!("类型：{}", ty.label_zh())
        } else {
            format!("type: {}", ty.label_en())
        });
    }
    if m.collective {
        parts.push(if zh {
            "集体访".into()
        } else {
            "group visit".into()
        });
    }
    if m.skip_level {
        parts.push(if zh {
            "越级访".into()
        } else {
            "skipped a level".into()
        });
    }
    if parts.is_empty() {
        return String::new();
    }
    if zh {
        format!("{}。", parts.join("；"))
    } else {
        format!("{}.", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_in_whole_days_or_hours_rounded_up() {
        assert_eq!(span(2 * DAY_MS, true), "2天");
        assert_eq!(span(DAY_MS + 1, true), "2天");
        assert_eq!(span(DAY_MS, false), "1 day");
        assert_eq!(span(5 * HOUR_MS - 1, true), "5小时");
        assert_eq!(span(20 * HOUR_MS, false), "20 hours");
        assert_eq!(span(59 * 60_000, true), "不到1小时");
        assert_eq!(
            deadline(
                DeadlineState::Open {
                    left_ms: 2 * DAY_MS - 7 * HOUR_MS
                },
                true
            ),
            "还剩2天"
        );
        assert_eq!(
            deadline(DeadlineState::Overdue { by_ms: 3 * DAY_MS }, true),
            "逾期3天"
        );
        assert_eq!(
            deadline(DeadlineState::Lapsed, true),
            "已过期（当事人未申请）"
        );
    }

    #[test]
    fn a_protection_order_falls_due_at_an_hour() {
        use guihe_protocol::deadline::DeadlineKind;
        // 2026-03-05 00:00 Beijing time, and six and a half hours later.
        let day = 1_772_640_000_000;
        assert_eq!(
            due(DeadlineKind::PetitionAccept, day + 23_400_000),
            "2026-03-05"
        );
        assert_eq!(
            due(DeadlineKind::ProtectionOrder, day + 23_400_000),
            "2026-03-05 06:30"
        );
    }

    #[test]
    fn dates_read_as_chinese_documents_write_them() {
        // 2026-03-05 00:00 Beijing time.
        assert_eq!(date_zh(1_772_640_000_000), "2026年3月5日");
        assert_eq!(date_zh(1_772_640_000_000 - 1), "2026年3月4日");
    }
}

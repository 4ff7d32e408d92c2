//! The sync page: peers, freshness, what was refused and why.

use super::*;

pub(super) async fn sync_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(r) = status_report(&state).await else {
        return message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::SERVICE_UNAVAILABLE,
            ctx.lang.t("节点忙，请稍后。", "The node is busy."),
        );
    };
    let t = |zh, en| ctx.lang.t(zh, en);
    let now = now_ms();
    let ago = |ms: Option<u64>| match ms {
        None => t("从未", "never").to_string(),
        Some(ms) => format!(
            "{}{}",
            crate::words::span(now.saturating_sub(ms), ctx.lang == Lang::Zh),
            t("前", " ago")
        ),
    };
    let body = html! {
        @if r.disk_low {
            p.error id="disk-low" { (t("磁盘将满：在腾出空间之前，本节点不接受新记录，也不同步。已有记录仍可查看。", "The disk is nearly full: until space is freed this node takes no new entries and does not sync. Existing records can still be read.")) }
        }
        p { (t("本节点", "This node")) " " (r.division) " · " (crate::words::role(&r.role, ctx.lang == Lang::Zh)) " · "
            (t("记录", "records")) " " (r.records) " · " (t("待补依赖", "waiting for dependencies")) " " (r.pending) }
        @if r.held > 0 {
            p.flag id="held" { (t("有 ", "")) (r.held) (t(" 条变更的时间戳远在未来（发出方电脑时钟偏快），暂不采用，到时自动处理。",
                " changes are stamped far in the future (the sender's PC clock is fast): they are held and taken when their time comes.")) }
        }
        h2 { (t("对等节点", "Peers")) }
        table id="peers" {
            tr { th { (t("辖区", "Division")) } th { (t("连接", "Link")) } th { (t("上次同步", "Last sync")) } th { (t("上次收到", "Last heard")) } th { (t("收到变更", "Changes in")) } th { (t("对方时钟", "Peer's clock")) } }
            @for p in &r.peers {
                @let skew = p.clock_skew_ms.unwrap_or(0);
                @let far = skew.abs() > crate::net::SKEW_WARN_MS;
                tr {
                    td { (p.division.as_deref().unwrap_or("?")) }
                    td { (if p.connected { t("已连接", "connected") } else { t("未连接", "down") }) }
                    td { (ago(p.last_reconciled_ms)) }
                    td { (ago(p.last_seen_ms)) }
                    td { (p.changes_in) }
                    td class=(if far { "flag" } else { "" }) {
                        @match p.clock_skew_ms {
                            None => { "—" }
                            Some(_) if !far => { (t("一致", "in step")) }
                            Some(ms) => {
                                (format!("{} {:.0} {}", if ms > 0 { t("快", "ahead") } else { t("慢", "behind") }, (ms.unsigned_abs() as f64) / 60_000.0, t("分钟，请校正时钟", "min: set the clock right")))
                            }
                        }
                    }
                }
            }
        }
        @if !r.quarantined.is_empty() {
            h2 { (t("已隔离的变更", "Refused changes kept aside")) }
            p.error { (t("以下变更由已认证的节点签名，但不符合记录规则或其权限，未被采用，也不会转发给其他节点。该节点此后对同一记录的变更会一直等待，请联系该办公室核实，并由乡镇重新登记需要的内容。",
                "These changes were signed by certified nodes but break the record rules or the signer's authority: they were not applied and are not passed on. That node's later changes to the same records wait behind them; contact the office, and have the township record again what is needed.")) }
            table id="quarantine" {
                tr { th { (t("签名节点", "Signed by")) } th { (t("记录", "Record")) } th { (t("原因", "Reason")) } th { (t("拒收时间", "Refused")) } }
                @for q in &r.quarantined {
                    tr {
                        td { (q.signer_division.as_deref().unwrap_or("?")) " " small { (q.signer.chars().take(12).collect::<String>()) } }
                        td { (q.record) }
                        td title=(q.detail) { (t(&q.reason_zh, &q.reason_en)) }
                        td { (ago(Some(q.refused_ms))) }
                    }
                }
            }
        }
        @if !r.refused_upstream.is_empty() {
            h2 { (t("本机被上级拒收的修改", "This office's changes refused above")) }
            p.error { (t("上级节点拒收了本机对以下记录的修改，本机已不能再修改这些记录。请联系乡镇（街道）调解办公室，由上级重新登记需要补充的内容。",
                "The office above refused this office's changes to these records, which can no longer be changed here. Ask the township office to record what is needed.")) }
            table id="refused-upstream" {
                tr { th { (t("记录", "Record")) } th { (t("原因", "Reason")) } th { (t("得知时间", "Learned")) } }
                @for q in &r.refused_upstream {
                    tr {
                        td { a href=(format!("/records/{}", q.record)) { (q.record) } }
                        td title=(q.code) { (t(&q.reason_zh, &q.reason_en)) }
                        td { (ago(Some(q.at_ms))) }
                    }
                }
            }
        }
        @if !r.reported.is_empty() {
            h2 { (t("下级上报的隔离变更", "Refused changes reported from below")) }
            p { (t("以下变更被下级办公室拒收并上报（隔离报告只在乡镇和县之间同步，不会发给村）。",
                "Offices below refused these changes and reported them (quarantine reports travel between townships and the county, never to villages).")) }
            table id="reported" {
                tr { th { (t("上报办公室", "Reported by")) } th { (t("签名节点", "Signed by")) } th { (t("记录", "Record")) } th { (t("原因", "Reason")) } th { (t("拒收时间", "Refused")) } }
                @for q in &r.reported {
                    tr {
                        td { (q.office) }
                        td { (q.signer_division.as_deref().unwrap_or("?")) " " small { (q.signer.chars().take(12).collect::<String>()) } }
                        td { (q.record) }
                        td title=(q.code) { (t(&q.reason_zh, &q.reason_en)) }
                        td { (ago(Some(q.refused_ms))) }
                    }
                }
            }
        }
        h2 { (t("各村数据新鲜度", "Data freshness per village")) }
        table id="freshness" {
            tr { th { (t("村", "Village")) } th { (t("最新变更", "Newest change")) } }
            @for f in &r.freshness {
                @let stale = now.saturating_sub(f.newest_ms) > 7 * 86_400_000;
                tr { td { (f.village) } td class=(if stale { "flag" } else { "" }) { (ago(Some(f.newest_ms))) } }
            }
        }
    };
    page(ctx.lang, Some(&ctx), t("同步状态", "Sync"), body)
}

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

/// A date as Chinese documents write it, Beijing time: 2026年3月5日.
pub fn date_zh(ms: u64) -> String {
    let ymd = guihe_protocol::stats::date_of(ms);
    let mut parts = ymd.split('-').map(|p| p.trim_start_matches('0'));
    match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) => format!("{y}年{m}月{d}日"),
        _ => ymd,
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
    fn dates_read_as_chinese_documents_write_them() {
        // 2026-03-05 00:00 Beijing time.
        assert_eq!(date_zh(1_772_640_000_000), "2026年3月5日");
        assert_eq!(date_zh(1_772_640_000_000 - 1), "2026年3月4日");
    }
}

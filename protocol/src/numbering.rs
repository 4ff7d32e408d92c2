//! Case numbers (（2026）……调字第7号): each office numbers the cases it accepts, per year,
//! without asking anyone. The next number is one above the highest the office has issued
//! that year among the records it holds, so a store rebuilt from its peers (which hold every
//! record the office numbered) never issues a printed number again. Two records holding the
//! same number can still happen (two PCs of one office apart, or a store rebuilt before its
//! peers returned everything): [`duplicates`] finds them, and the record page says so.

use std::collections::{BTreeMap, BTreeSet};

use crate::division::Division;
use crate::event::CaseNumber;
use crate::id::RecordId;

/// The number the office of division `office` gives the next case it accepts at `at_ms`
/// (Beijing year): one above the highest of that office and year in `held`.
pub fn next(
    office: Division,
    at_ms: u64,
    held: impl IntoIterator<Item = CaseNumber>,
) -> CaseNumber {
    let year = u16::try_from(crate::stats::year_of(at_ms)).unwrap_or(u16::MAX);
    let office = office.as_u64();
    let highest = held
        .into_iter()
        .filter(|n| n.office == office && n.year == year)
        .map(|n| n.seq)
        .max()
        .unwrap_or(0);
    CaseNumber {
        office,
        year,
        seq: highest.saturating_add(1),
    }
}

/// Gives an acceptance of a case (受理, or 接收 of a referral) its number, when the record schema the county allows
/// (`schema`) holds numbers and the acceptance has none: the next of `office` for the year
/// of the acceptance (`now_ms` if the command gives no date), from the numbers `held`.
pub fn number_acceptance(
    command: &mut crate::record::Command,
    record: RecordId,
    office: Division,
    now_ms: u64,
    schema: u64,
    held: impl IntoIterator<Item = CaseNumber>,
) {
    use crate::event::Body;
    use crate::record::Command;
    if !matches!(record, RecordId::Case(_)) || schema < 2 {
        return;
    }
    if let Command::Event {
        at_ms,
        body: Body::Accept(acceptance) | Body::Receive(acceptance),
    } = command
        && acceptance.number.is_none()
    {
        acceptance.number = Some(next(office, at_ms.unwrap_or(now_ms), held));
    }
}

/// The records whose number (office, year and sequence) another record also holds.
pub fn duplicates(
    numbered: impl IntoIterator<Item = (RecordId, CaseNumber)>,
) -> BTreeSet<RecordId> {
    let mut by_number: BTreeMap<CaseNumber, Vec<RecordId>> = BTreeMap::new();
    for (id, number) in numbered {
        by_number.entry(number).or_default().push(id);
    }
    by_number
        .into_values()
        .filter(|ids| ids.len() > 1)
        .flatten()
        .collect()
}

/// The number as a paper prints it, the office's short name (石柱县某村) left to `office`:
/// `（2026）{office}调字第7号`.
pub fn printed(number: CaseNumber, office: &str) -> String {
    format!("（{}）{office}调字第{}号", number.year, number.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::CaseId;

    const MAR_2026: u64 = 1_772_668_800_000; // 2026-03-05 08:00 Beijing
    const JAN_2027: u64 = 1_798_761_600_000; // 2027-01-01 08:00 Beijing

    #[test]
    fn each_office_numbers_its_own_per_year_from_the_highest_it_holds() {
        let a: Division = "500240101201".parse().unwrap();
        let b: Division = "500240101000".parse().unwrap();
        let n = |office: Division, year, seq| CaseNumber {
            office: office.as_u64(),
            year,
            seq,
        };
        assert_eq!(next(a, MAR_2026, []), n(a, 2026, 1));
        let held = [n(a, 2026, 3), n(a, 2026, 7), n(b, 2026, 40), n(a, 2025, 90)];
        assert_eq!(next(a, MAR_2026, held), n(a, 2026, 8));
        assert_eq!(next(b, MAR_2026, held), n(b, 2026, 41));
        // A new year starts again at 1.
        assert_eq!(next(a, JAN_2027, held), n(a, 2027, 1));
        assert_eq!(printed(n(a, 2026, 8), "某村"), "（2026）某村调字第8号");
    }

    #[test]
    fn a_number_two_records_hold_is_flagged_on_both() {
        let n = |seq| CaseNumber {
            office: 500_240_101_201,
            year: 2026,
            seq,
        };
        let ids: Vec<RecordId> = (0..3u8)
            .map(|i| RecordId::Case(CaseId::from_bytes([i; 16])))
            .collect();
        let found = duplicates([(ids[0], n(1)), (ids[1], n(2)), (ids[2], n(1))]);
        assert_eq!(found, BTreeSet::from([ids[0], ids[2]]));
    }
}

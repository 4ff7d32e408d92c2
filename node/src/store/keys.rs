//! Sealing and keys: every value starts with a CRC-32 of the rest, checked on every read;
//! the trees' keys and the reconciliation index's values.

use super::*;

#[derive(Serialize, Deserialize)]
pub(super) struct ChangeValue {
    pub(super) time_ms: u64,
    pub(super) deps: Vec<[u8; 32]>,
    pub(super) signer: NodeId,
    pub(super) signed: SignedChange,
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = crc32fast::hash(body).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

pub(super) fn open<'a>(
    tree: &'static str,
    key: &[u8],
    value: &'a [u8],
) -> Result<&'a [u8], StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        tree,
        key: hex(key),
        reason: reason.to_string(),
    };
    let (crc, body) = value
        .split_at_checked(4)
        .ok_or_else(|| corrupt("shorter than its checksum"))?;
    let expected = u32::from_be_bytes(crc.try_into().map_err(|_| corrupt("checksum"))?);
    if crc32fast::hash(body) != expected {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(body)
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value)
        .map(|b| seal(&b))
        .map_err(|e| StoreError::Encode(e.to_string()))
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(
    tree: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(open(tree, key, value)?).map_err(|e| StoreError::Corrupt {
        tree,
        key: hex(key),
        reason: e.to_string(),
    })
}

pub(super) fn record_key(record: RecordId) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(&record).map_err(|e| StoreError::Encode(e.to_string()))
}

pub(super) fn watermark_key(peer: &NodeId) -> Vec<u8> {
    let mut k = b"wm/".to_vec();
    k.extend_from_slice(peer.as_bytes());
    k
}

/// A key of the reconciliation index: the division's 12-digit code (a village, or the owner
/// of a division's own record, so that a range over a township's codes holds its villages
/// and its own records), the change's time and its hash.
pub(super) fn index_key(division: Division, time: u64, hash: &ChangeHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(&division.as_u64().to_be_bytes());
    k.extend_from_slice(&time.to_be_bytes());
    k.extend_from_slice(&hash.0);
    k
}

/// An index entry's value: the record's divisions, so that a session's scope is decided
/// without reading the change. (Stores written before this hold empty values; `keys`
/// reads the change for those.)
pub(super) fn index_value(divisions: &[Division]) -> Result<Vec<u8>, StoreError> {
    encode(&divisions)
}

pub(super) fn parse_index_key(k: &[u8]) -> Option<(u64, ChangeHash)> {
    let time = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    let hash: [u8; 32] = k.get(16..48)?.try_into().ok()?;
    Some((time, ChangeHash(hash)))
}

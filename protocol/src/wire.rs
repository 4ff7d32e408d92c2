//! The sync protocol's messages and their encoding.
//!
//! A message on the wire is one version byte followed by the postcard encoding of a
//! [`Message`]. The transport frames messages (the node with a length prefix on a libp2p
//! stream, the simulator as whole values); this module sees whole messages and refuses any
//! longer than [`MESSAGE_BYTES_MAX`] before decoding. Decoding never trusts a length from
//! the wire beyond the bytes actually present: postcard reads lengths as varints and
//! checks them against the remaining input.

use serde::{Deserialize, Serialize};

use crate::cert::{Certificate, Frontier, RevocationList, Settings};
use crate::signed::SignedChange;

/// The encoding's version, the first byte of every message.
pub const WIRE_VERSION: u8 = 1;

/// The sync protocol's version, exchanged in `Hello`. Version 2 adds `Greeting` and
/// `Frontier`. Version 3 adds divisions' own records (`owned`): a record id of kind 2 and
/// an owner's code among a change's divisions, which a node of version 1 or 2 cannot
/// read, so sessions of those versions leave such records out of their scope; and
/// `Refused`, which tells a signer that its change was refused, and `Settings`, the county's
/// settings (which record schema nodes may write). Version 4 adds `HelloKnown`, a `Hello`
/// that names the sender's certificate by its short hash instead of carrying it, and
/// `CertWanted`, the answer of a peer that does not hold it, and `TailShort`, a `Tail` with
/// a shorter fingerprint. A node speaks every version
/// from [`OLDEST_PROTOCOL_VERSION`] on, so that a mesh keeps syncing while its offices are
/// upgraded one by one; the transport settles which one a connection speaks before the
/// first message (the node: one libp2p stream protocol per version).
pub const PROTOCOL_VERSION: u16 = 4;

/// The oldest sync protocol version this build still speaks.
pub const OLDEST_PROTOCOL_VERSION: u16 = 1;

/// The longest message accepted or sent, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;

/// One message of a sync session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The first message each side sends.
    Hello {
        /// The sender's protocol version.
        version: u16,
        /// The sender's certificate.
        cert: Certificate,
        /// The version of the newest revocation list the sender holds.
        revocations: u64,
    },
    /// A newer revocation list than the peer said it holds.
    Revocations(RevocationList),
    /// A negentropy reconciliation frame over the change keys in scope (or, after `Tail`
    /// was accepted, over the keys at or above its watermark).
    Reconcile(Vec<u8>),
    /// The initiator's opening when it met this peer before: a summary of its keys below
    /// the watermark of their last complete session, and the first negentropy frame over
    /// the keys at or above it. If the responder's summary matches, only the tail is
    /// reconciled; otherwise it answers `FullReconcile`.
    Tail {
        /// The watermark (ms).
        below_ms: u64,
        /// How many keys lie below it.
        count: u64,
        /// A fingerprint of those keys.
        fingerprint: [u8; 32],
        /// The first negentropy frame over the keys at or above the watermark.
        frame: Vec<u8>,
    },
    /// The summaries below the watermark differ: reconcile everything.
    FullReconcile,
    /// Changes the sender lacks and asks for (by hash).
    Want(Vec<[u8; 32]>),
    /// A batch of changes, with the certificates of their signers the receiver may lack.
    Changes {
        /// The batch's number, echoed by `Ack`.
        batch: u64,
        /// Certificates of the batch's signers.
        certs: Vec<Certificate>,
        /// The changes, in causal order per record.
        changes: Vec<SignedChange>,
    },
    /// The batch was verified and stored durably.
    Ack {
        /// The batch acknowledged.
        batch: u64,
    },
    /// (Version 2.) Sent once the peer's `Hello` verified: the sender's clock, so that
    /// each side sees how far apart they are, and the version of the newest frontier of
    /// revoked keys it holds.
    Greeting {
        /// The sender's clock when it sent this (ms since the epoch).
        clock_ms: u64,
        /// The version of its newest frontier (0: none).
        frontier: u64,
    },
    /// (Version 2.) A newer frontier of revoked keys than the peer said it holds.
    Frontier(Frontier),
    /// (Version 3.) Changes the peer signed and sent that the sender refused and keeps
    /// aside, so that the peer stops writing to those records (at most
    /// [`REFUSALS_MAX`]).
    Refused(Vec<Refusal>),
    /// (Version 3.) The sender's county settings (`cert::Settings`), sent once the peer's
    /// `Hello` verified, and again when newer ones arrive; the receiver keeps them if they
    /// are newer than its own.
    Settings(Settings),
    /// (Version 4.) The first message each side sends: a `Hello` that names the sender's
    /// certificate by its short hash (`Certificate::short_hash`) instead of carrying it,
    /// since a peer met before holds it. A peer that does not answers `CertWanted`, and
    /// the sender then sends `Hello` with the certificate.
    HelloKnown {
        /// The sender's protocol version.
        version: u16,
        /// The short hash of the sender's certificate.
        cert: [u8; 8],
        /// The version of the newest revocation list the sender holds.
        revocations: u64,
    },
    /// (Version 4.) The answer to a `HelloKnown` whose certificate the receiver does not
    /// hold: send `Hello`.
    CertWanted,
    /// (Version 4.) `Tail` with the fingerprint cut to its first 16 bytes: a summary that
    /// differs is still found with all but a negligible chance, and a contact with nothing
    /// changed costs 16 bytes less.
    TailShort {
        /// The watermark (ms).
        below_ms: u64,
        /// How many keys lie below it.
        count: u64,
        /// The first 16 bytes of the fingerprint of those keys.
        fingerprint: [u8; 16],
        /// The first negentropy frame over the keys at or above the watermark.
        frame: Vec<u8>,
    },
}

/// The most refusals one `Refused` message carries.
pub const REFUSALS_MAX: usize = 1_024;

/// One refused change in a `Refused` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The change's hash.
    pub hash: [u8; 32],
    /// Why it was refused (`signed::VerifyError::code`).
    pub code: String,
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Longer than the bound.
    #[error("message of {len} bytes is longer than the bound of {MESSAGE_BYTES_MAX}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Empty.
    #[error("empty message")]
    Empty,
    /// An encoding version this build does not speak.
    #[error("unknown wire version {0}")]
    Version(u8),
    /// Not a message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Bytes left over after the message.
    #[error("{0} bytes after the end of the message")]
    Trailing(usize),
}

impl Message {
    /// Encodes the message, refusing one longer than the bound.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = vec![WIRE_VERSION];
        let body = postcard::to_allocvec(self).map_err(|e| WireError::Malformed(e.to_string()))?;
        out.extend_from_slice(&body);
        if out.len() > MESSAGE_BYTES_MAX {
            return Err(WireError::TooLong { len: out.len() });
        }
        Ok(out)
    }

    /// Decodes a message, checking the bound first.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(WireError::TooLong { len: bytes.len() });
        }
        let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
        if version != WIRE_VERSION {
            return Err(WireError::Version(version));
        }
        let (message, rest) =
            postcard::take_from_bytes(body).map_err(|e| WireError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::Trailing(rest.len()));
        }
        Ok(message)
    }

    /// The name of a message's kind, read from its encoding's first two bytes without
    /// decoding the rest (for counting bytes by kind); `None` for bytes that are not a
    /// message of this version.
    pub fn kind_of(bytes: &[u8]) -> Option<&'static str> {
        const KINDS: [&str; 15] = [
            "hello",
            "revocations",
            "reconcile",
            "tail",
            "full_reconcile",
            "want",
            "changes",
            "ack",
            "greeting",
            "frontier",
            "refused",
            "settings",
            "hello_known",
            "cert_wanted",
            "tail_short",
        ];
        match bytes {
            // The variant's index is a varint; every index below 128 is one byte.
            [WIRE_VERSION, index, ..] => KINDS.get(usize::from(*index)).copied(),
            _ => None,
        }
    }

    /// The size of the message's encoding (0 if it cannot be encoded).
    pub fn encoded_len(&self) -> usize {
        postcard::experimental::serialized_size(self).map_or(0, |n| n + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let m = Message::Want(vec![[7; 32], [9; 32]]);
        let bytes = m.encode().unwrap();
        assert_eq!(bytes.len(), m.encoded_len());
        assert_eq!(Message::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn a_messages_kind_is_read_from_its_first_bytes() {
        let kinds = [
            (Message::FullReconcile, "full_reconcile"),
            (Message::Want(vec![[1; 32]]), "want"),
            (Message::Ack { batch: 1 }, "ack"),
            (
                Message::Greeting {
                    clock_ms: 5,
                    frontier: 0,
                },
                "greeting",
            ),
            (Message::Refused(Vec::new()), "refused"),
            (Message::Reconcile(vec![1, 2]), "reconcile"),
            (
                Message::HelloKnown {
                    version: 4,
                    cert: [3; 8],
                    revocations: 1,
                },
                "hello_known",
            ),
            (Message::CertWanted, "cert_wanted"),
        ];
        for (m, kind) in kinds {
            assert_eq!(Message::kind_of(&m.encode().unwrap()), Some(kind));
        }
        assert_eq!(Message::kind_of(&[1]), None);
        assert_eq!(Message::kind_of(&[9, 0]), None);
    }

    #[test]
    fn bad_messages_are_typed_errors() {
        assert_eq!(Message::decode(&[]), Err(WireError::Empty));
        assert_eq!(Message::decode(&[9, 0]), Err(WireError::Version(9)));
        assert!(matches!(
            Message::decode(&[1, 200]),
            Err(WireError::Malformed(_))
        ));
        let mut bytes = Message::Ack { batch: 3 }.encode().unwrap();
        bytes.push(0);
        assert_eq!(Message::decode(&bytes), Err(WireError::Trailing(1)));
        let long = vec![1u8; MESSAGE_BYTES_MAX + 1];
        assert!(matches!(
            Message::decode(&long),
            Err(WireError::TooLong { .. })
        ));
        // A length prefix claiming far more than is there.
        assert!(matches!(
            Message::decode(&[1, 3, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(WireError::Malformed(_))
        ));
    }
}

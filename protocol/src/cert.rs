//! Identity and authority: the county root key, node certificates, the revocation list and
//! the rules for who may read and write a record.
//!
//! The county signs one certificate per node: its Ed25519 public key, its role, the
//! division it serves, a validity window and a serial. A node reads the records that touch
//! any village of its division and writes only records all of whose villages lie in its
//! division (an observer writes nothing). A root-signed, versioned revocation list travels
//! with every handshake; the newer list wins.
//!
//! Signed bytes are the postcard encoding of the body, prefixed by a domain tag, so a
//! signature over one kind of thing can never be replayed as another.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::division::{Division, Level};
use crate::id::NodeId;

/// Why a certificate, a revocation list or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CertError {
    /// The bytes are not a certificate or a list.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The signature does not verify against the county root.
    #[error("not signed by this county's root key")]
    UnknownRoot,
    /// A signature that does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The certificate is not valid at this time.
    #[error("certificate {serial} is valid from {not_before_ms} to {not_after_ms}, not at {at_ms}")]
    Expired {
        /// Serial.
        serial: u64,
        /// Start of validity.
        not_before_ms: u64,
        /// End of validity.
        not_after_ms: u64,
        /// The time checked.
        at_ms: u64,
    },
    /// The certificate was revoked.
    #[error("certificate {serial} of {node} was revoked")]
    Revoked {
        /// Serial.
        serial: u64,
        /// The node.
        node: NodeId,
    },
    /// The role and the division's level do not match.
    #[error("a {role:?} certificate cannot serve a {level:?} division")]
    RoleLevel {
        /// The role.
        role: Role,
        /// The division's level.
        level: Level,
    },
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A village office: reads and writes its village.
    Village,
    /// A township aggregator: its villages.
    Township,
    /// The county: everything.
    County,
    /// Read-only, for dashboards, over any division.
    Observer,
}

/// The signed part of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertBody {
    /// Serial number, unique per root.
    pub serial: u64,
    /// The node's public key.
    pub node: NodeId,
    /// The node's role.
    pub role: Role,
    /// The division it serves.
    pub division: Division,
    /// Valid from (ms since the epoch).
    pub not_before_ms: u64,
    /// Valid until (ms since the epoch).
    pub not_after_ms: u64,
}

/// A node certificate: a body signed by the county root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// What is certified.
    pub body: CertBody,
    /// The root's signature over the tagged body.
    pub signature: Vec<u8>,
}

/// One revoked key. Every certificate of the key is revoked, whatever its serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The serial of the certificate that was reported lost (for the record: the
    /// revocation covers every certificate of `node`).
    pub serial: u64,
    /// The node.
    pub node: NodeId,
    /// From when its signatures are refused. Changes stamped earlier stay valid, so what
    /// an office recorded before its PC was stolen is not lost.
    pub from_ms: u64,
}

/// The signed part of a revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RevocationBody {
    /// Increases with every new list.
    pub version: u64,
    /// The revoked certificates.
    pub revoked: Vec<Revoked>,
}

/// A county-signed revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    /// The list.
    pub body: RevocationBody,
    /// The root's signature over the tagged body.
    pub signature: Vec<u8>,
}

/// What the county accepted from revoked keys before it revoked them: for each key, each
/// record it wrote and each store incarnation of the key (the last 8 bytes of its
/// Automerge actor), the sequence number of the last change of it the county holds.
/// Sequence numbers are per record, so the frontier is per record.
///
/// A thief controls the clock of a stolen PC, so a revocation's time (`Revoked::from_ms`)
/// cannot tell the office's work from the thief's: a change beyond the frontier is refused
/// whatever time it claims, and one within it is accepted, on every path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FrontierBody {
    /// Increases with every new frontier; the county makes one with each revocation list
    /// that revokes a key, holding every revoked key so far.
    pub version: u64,
    /// One entry per revoked key.
    pub keys: Vec<KeyFrontier>,
}

/// The frontier of one revoked key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFrontier {
    /// The revoked key.
    pub node: NodeId,
    /// The records it wrote, each with `(incarnation, last sequence number)` per store
    /// incarnation of the key.
    pub records: Vec<(crate::id::RecordId, Vec<(u64, u64)>)>,
}

impl FrontierBody {
    /// Whether a change by `node` to `record`, made by its store incarnation `incarnation`
    /// with sequence number `seq`, lies within what the county accepted; `None` when the
    /// frontier says nothing of `node`.
    pub fn allows(
        &self,
        node: &NodeId,
        record: crate::id::RecordId,
        incarnation: u64,
        seq: u64,
    ) -> Option<bool> {
        let key = self.keys.iter().find(|k| k.node == *node)?;
        Some(
            key.records
                .iter()
                .filter(|(r, _)| *r == record)
                .flat_map(|(_, last)| last.iter())
                .any(|(inc, last)| *inc == incarnation && seq <= *last),
        )
    }
}

/// A county-signed frontier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    /// The frontier.
    pub body: FrontierBody,
    /// The root's signature over the tagged body.
    pub signature: Vec<u8>,
}

impl Frontier {
    /// The frontier's encoding (postcard), as files and messages carry it.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CertError> {
        encode(self)
    }

    /// A frontier from its encoding, refusing trailing bytes. Nothing is verified: call
    /// [`Frontier::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Frontier, CertError> {
        decode(bytes)
    }

    /// Checks the root's signature.
    pub fn verify(&self, root: &NodeId) -> Result<(), CertError> {
        verify(root, &tagged(FRONTIER_TAG, &self.body)?, &self.signature)
            .map_err(|_| CertError::UnknownRoot)
    }
}

/// What the county lets every node write, signed by the root and carried by sync (protocol
/// version 3) to every node: the mesh's settings.
///
/// Offices upgrade one by one, so a build may know a record schema that older builds in
/// the mesh do not: if it wrote it, they would hold its new records unread (`rules` holds
/// a record of a schema it does not know) until they are upgraded, and refuse for good
/// what it added to older records (a field or step of the new schema). So a build writes the
/// newest schema it knows that the county allows: the county raises `record_schema` once
/// every office runs a build that reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsBody {
    /// Increases with every new setting.
    pub version: u64,
    /// The newest record schema the county allows nodes to write.
    pub record_schema: u64,
    /// When the county made it (ms since the epoch).
    pub issued_ms: u64,
}

/// County-signed settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The settings.
    pub body: SettingsBody,
    /// The root's signature over the tagged body.
    pub signature: Vec<u8>,
}

impl Settings {
    /// The settings' encoding (postcard), as files and messages carry it.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CertError> {
        encode(self)
    }

    /// Settings from their encoding, refusing trailing bytes. Nothing is verified: call
    /// [`Settings::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Settings, CertError> {
        decode(bytes)
    }

    /// Checks the root's signature.
    pub fn verify(&self, root: &NodeId) -> Result<(), CertError> {
        verify(root, &tagged(SETTINGS_TAG, &self.body)?, &self.signature)
            .map_err(|_| CertError::UnknownRoot)
    }
}

/// The record schema a build that knows schemas up to `known` writes under `settings`:
/// the newest it knows that the county allows; schema 1, which every build reads, without
/// settings.
pub fn writable_schema(settings: Option<&SettingsBody>, known: u64) -> u64 {
    settings
        .map_or(1, |s| s.record_schema)
        .clamp(1, known.max(1))
}

/// What a verifier knows of revocations: the newest list, and the newest frontier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// The newest revocation list.
    pub list: RevocationBody,
    /// The newest frontier, if the county made one.
    pub frontier: Option<FrontierBody>,
}

impl From<RevocationBody> for Revocations {
    fn from(list: RevocationBody) -> Revocations {
        Revocations {
            list,
            frontier: None,
        }
    }
}

const CERT_TAG: &[u8] = b"guihe-cert-v1";
const REVOCATION_TAG: &[u8] = b"guihe-revocations-v1";
const FRONTIER_TAG: &[u8] = b"guihe-frontier-v1";
const SETTINGS_TAG: &[u8] = b"guihe-settings-v1";

fn tagged<T: Serialize>(tag: &[u8], body: &T) -> Result<Vec<u8>, CertError> {
    let mut out = tag.to_vec();
    let body = postcard::to_allocvec(body).map_err(|e| CertError::Malformed(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CertError> {
    postcard::to_allocvec(value).map_err(|e| CertError::Malformed(e.to_string()))
}

/// Decodes the whole of `bytes`: a value followed by anything is refused.
fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CertError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| CertError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::Malformed(format!(
            "{} bytes after the end",
            rest.len()
        )));
    }
    Ok(value)
}

fn signature(bytes: &[u8]) -> Result<Signature, CertError> {
    let array: [u8; 64] = bytes.try_into().map_err(|_| CertError::BadSignature)?;
    Ok(Signature::from_bytes(&array))
}

/// Verifies `sig` by `key` over `message`, strictly (no malleable signatures).
pub fn verify(key: &NodeId, message: &[u8], sig: &[u8]) -> Result<(), CertError> {
    let key = VerifyingKey::from_bytes(key.as_bytes()).map_err(|_| CertError::BadSignature)?;
    key.verify_strict(message, &signature(sig)?)
        .map_err(|_| CertError::BadSignature)
}

/// A signing key: the county root's, or a node's.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}

impl Keypair {
    /// A key from 32 secret bytes (from the caller's randomness or a key file).
    pub fn from_secret(secret: [u8; 32]) -> Keypair {
        Keypair(SigningKey::from_bytes(&secret))
    }

    /// A fresh key from the caller's randomness.
    pub fn generate(rng: &mut dyn rand_core::RngCore) -> Keypair {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        Keypair::from_secret(secret)
    }

    /// The secret bytes, for the key file.
    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key as a node id.
    pub fn public(&self) -> NodeId {
        NodeId::from_bytes(self.0.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}

/// The county root: issues certificates and revocation lists.
#[derive(Debug, Clone)]
pub struct Root {
    key: Keypair,
}

impl Root {
    /// The root with this key.
    pub fn new(key: Keypair) -> Root {
        Root { key }
    }

    /// The root's public key, which every node is configured with.
    pub fn public(&self) -> NodeId {
        self.key.public()
    }

    /// Issues a certificate. The role must fit the division's level.
    pub fn issue(&self, body: CertBody) -> Result<Certificate, CertError> {
        check_role(body.role, body.division)?;
        let signature = self.key.sign(&tagged(CERT_TAG, &body)?);
        Ok(Certificate { body, signature })
    }

    /// Signs a revocation list.
    pub fn revocations(&self, body: RevocationBody) -> Result<RevocationList, CertError> {
        let signature = self.key.sign(&tagged(REVOCATION_TAG, &body)?);
        Ok(RevocationList { body, signature })
    }

    /// Signs a frontier.
    pub fn frontier(&self, body: FrontierBody) -> Result<Frontier, CertError> {
        let signature = self.key.sign(&tagged(FRONTIER_TAG, &body)?);
        Ok(Frontier { body, signature })
    }

    /// Signs settings.
    pub fn settings(&self, body: SettingsBody) -> Result<Settings, CertError> {
        let signature = self.key.sign(&tagged(SETTINGS_TAG, &body)?);
        Ok(Settings { body, signature })
    }
}

fn check_role(role: Role, division: Division) -> Result<(), CertError> {
    let ok = match role {
        Role::Village => division.level() == Level::Village,
        Role::Township => division.level() == Level::Township,
        Role::County => division.level() == Level::County,
        Role::Observer => true,
    };
    if ok {
        Ok(())
    } else {
        Err(CertError::RoleLevel {
            role,
            level: division.level(),
        })
    }
}

impl Certificate {
    /// The certificate's encoding (postcard), as files and messages carry it.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CertError> {
        encode(self)
    }

    /// A certificate from its encoding, refusing trailing bytes. Nothing is verified:
    /// call [`Certificate::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Certificate, CertError> {
        decode(bytes)
    }

    /// The first eight bytes of the SHA-256 of the certificate's encoding: how a `Hello`
    /// names a certificate the peer already holds (`wire::Message::HelloKnown`). A peer
    /// looks it up among the certificates of the key the transport authenticated, so eight
    /// bytes tell them apart; whatever it finds is verified like a certificate sent whole.
    pub fn short_hash(&self) -> [u8; 8] {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.to_bytes().unwrap_or_default());
        let mut out = [0u8; 8];
        out.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        out
    }

    /// Checks the root's signature and the role's fit. Validity in time and revocation
    /// are checked separately, because they depend on when.
    pub fn verify(&self, root: &NodeId) -> Result<(), CertError> {
        check_role(self.body.role, self.body.division)?;
        verify(root, &tagged(CERT_TAG, &self.body)?, &self.signature)
            .map_err(|_| CertError::UnknownRoot)
    }

    /// Checks that the certificate is valid at `at_ms` and not revoked by then.
    pub fn valid_at(&self, at_ms: u64, revocations: &RevocationBody) -> Result<(), CertError> {
        let b = &self.body;
        if at_ms < b.not_before_ms || at_ms > b.not_after_ms {
            return Err(CertError::Expired {
                serial: b.serial,
                not_before_ms: b.not_before_ms,
                not_after_ms: b.not_after_ms,
                at_ms,
            });
        }
        // A revocation names the node's key: every certificate of the key is revoked, so a
        // renewed node cannot fall back on an older certificate.
        if revocations
            .revoked
            .iter()
            .any(|r| r.node == b.node && at_ms >= r.from_ms)
        {
            return Err(CertError::Revoked {
                serial: b.serial,
                node: b.node,
            });
        }
        Ok(())
    }

    /// The node certified.
    pub fn node(&self) -> NodeId {
        self.body.node
    }

    /// Whether the holder may read a record that belongs to these divisions: its division
    /// contains any of them. A case or petition belongs to villages, so it is read by them,
    /// their township and the county; a division's own record (`owned`) belongs to a
    /// township or the county, so it is read by its owner and the levels above, never by a
    /// village.
    pub fn may_read<D: Copy + Into<Division>>(&self, places: &[D]) -> bool {
        places
            .iter()
            .any(|d| self.body.division.contains((*d).into()))
    }

    /// Whether the holder may write a record that belongs to these divisions: it is not an
    /// observer, its division contains every village of the record, and a division's own
    /// record is written by that division alone (not by the levels above).
    pub fn may_write<D: Copy + Into<Division>>(&self, places: &[D]) -> bool {
        self.body.role != Role::Observer
            && !places.is_empty()
            && places.iter().all(|d| match (*d).into() {
                Division::Village(v) => self.body.division.covers(v),
                owner => self.body.division == owner,
            })
    }
}

impl RevocationList {
    /// The list's encoding (postcard), as files and messages carry it.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CertError> {
        encode(self)
    }

    /// A list from its encoding, refusing trailing bytes. Nothing is verified: call
    /// [`RevocationList::verify`].
    pub fn from_bytes(bytes: &[u8]) -> Result<RevocationList, CertError> {
        decode(bytes)
    }

    /// Checks the root's signature.
    pub fn verify(&self, root: &NodeId) -> Result<(), CertError> {
        verify(root, &tagged(REVOCATION_TAG, &self.body)?, &self.signature)
            .map_err(|_| CertError::UnknownRoot)
    }
}

/// Where a verifier finds certificates already checked against the county root.
pub trait CertLookup {
    /// The certificates known for a node (a renewed node has several).
    fn certificates(&self, node: &NodeId) -> Vec<Certificate>;
}

/// A node's own identity: its key and its certificate.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The node's key.
    pub key: Keypair,
    /// Its certificate.
    pub cert: Certificate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Root {
        Root::new(Keypair::from_secret([1; 32]))
    }

    fn body(role: Role, division: &str) -> CertBody {
        CertBody {
            serial: 7,
            node: Keypair::from_secret([2; 32]).public(),
            role,
            division: division.parse().unwrap(),
            not_before_ms: 100,
            not_after_ms: 200,
        }
    }

    #[test]
    fn a_certificate_verifies_against_its_root_only() {
        let cert = root().issue(body(Role::Village, "500240101201")).unwrap();
        cert.verify(&root().public()).unwrap();
        let other = Root::new(Keypair::from_secret([9; 32]));
        assert_eq!(cert.verify(&other.public()), Err(CertError::UnknownRoot));
        let mut altered = cert.clone();
        altered.body.role = Role::County;
        altered.body.division = "500240000000".parse().unwrap();
        assert_eq!(
            altered.verify(&root().public()),
            Err(CertError::UnknownRoot)
        );
    }

    #[test]
    fn a_role_must_fit_its_division() {
        assert!(matches!(
            root().issue(body(Role::Village, "500240101000")),
            Err(CertError::RoleLevel { .. })
        ));
        assert!(root().issue(body(Role::Observer, "500240101000")).is_ok());
    }

    #[test]
    fn validity_window_and_revocation() {
        let cert = root().issue(body(Role::Village, "500240101201")).unwrap();
        let none = RevocationBody::default();
        assert!(cert.valid_at(150, &none).is_ok());
        assert!(matches!(
            cert.valid_at(201, &none),
            Err(CertError::Expired { .. })
        ));
        let revoked = RevocationBody {
            version: 1,
            revoked: vec![Revoked {
                serial: 7,
                node: cert.node(),
                from_ms: 160,
            }],
        };
        assert!(cert.valid_at(150, &revoked).is_ok(), "before revocation");
        assert!(matches!(
            cert.valid_at(170, &revoked),
            Err(CertError::Revoked { .. })
        ));
    }

    #[test]
    fn read_and_write_rules() {
        let v1: crate::division::VillageCode = "500240101201".parse().unwrap();
        let v2: crate::division::VillageCode = "500240101202".parse().unwrap();
        let village = root().issue(body(Role::Village, "500240101201")).unwrap();
        let township = root().issue(body(Role::Township, "500240101000")).unwrap();
        let observer = root().issue(body(Role::Observer, "500240000000")).unwrap();
        assert!(village.may_read(&[v1, v2]) && !village.may_write(&[v1, v2]));
        assert!(village.may_write(&[v1]) && !village.may_read(&[v2]));
        assert!(township.may_write(&[v1, v2]));
        assert!(observer.may_read(&[v1]) && !observer.may_write(&[v1]));
    }

    #[test]
    fn a_build_writes_the_newest_schema_it_knows_that_the_county_allows() {
        let allows = |n| SettingsBody {
            version: 1,
            record_schema: n,
            issued_ms: 0,
        };
        assert_eq!(writable_schema(None, 3), 1);
        assert_eq!(writable_schema(Some(&allows(0)), 3), 1);
        assert_eq!(writable_schema(Some(&allows(2)), 3), 2);
        assert_eq!(writable_schema(Some(&allows(9)), 3), 3);
        let settings = root().settings(allows(2)).unwrap();
        settings.verify(&root().public()).unwrap();
        let bytes = settings.to_bytes().unwrap();
        assert_eq!(Settings::from_bytes(&bytes).unwrap(), settings);
        let other = Root::new(Keypair::from_secret([9; 32]));
        assert!(settings.verify(&other.public()).is_err());
    }

    #[test]
    fn a_division_record_is_read_by_its_owner_and_above_and_written_by_its_owner() {
        let d = |s: &str| s.parse::<Division>().unwrap();
        let own = d("500240101000");
        let village = root().issue(body(Role::Village, "500240101201")).unwrap();
        let township = root().issue(body(Role::Township, "500240101000")).unwrap();
        let other = root().issue(body(Role::Township, "500240102000")).unwrap();
        let county = root().issue(body(Role::County, "500240000000")).unwrap();
        assert!(!village.may_read(&[own]) && !village.may_write(&[own]));
        assert!(township.may_read(&[own]) && township.may_write(&[own]));
        assert!(!other.may_read(&[own]) && !other.may_write(&[own]));
        assert!(county.may_read(&[own]) && !county.may_write(&[own]));
        let county_own = d("500240000000");
        assert!(county.may_read(&[county_own]) && county.may_write(&[county_own]));
        assert!(!township.may_read(&[county_own]));
    }
}

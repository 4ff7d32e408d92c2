//! Key and certificate files.
//!
//! A key file holds one line: `guihe-key-v1 <64 hex digits>`; it is created readable by its
//! owner only. A certificate file holds `guihe-cert-v1 <hex of the certificate's encoding>`.
//! Both are text so an operator can check what they copy onto a USB stick.

use std::io::Write;
use std::path::{Path, PathBuf};

use guihe_protocol::cert::{Certificate, Keypair, RevocationList};
use guihe_protocol::id::NodeId;

/// Why a key or certificate file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not what it should be.
    #[error("{path}: 不是 guihe 的{zh}文件 not a guihe {what} file ({reason})", zh = what_zh(what))]
    Format {
        /// The file.
        path: PathBuf,
        /// Key or certificate.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A key file exists already; keys are never overwritten.
    #[error("{0} exists already; refusing to overwrite a key")]
    Exists(PathBuf),
}

/// The Chinese name of a kind of file, for the error a worker or operator reads.
fn what_zh(what: &str) -> &'static str {
    match what {
        "key" => "密钥",
        "certificate" => "证书",
        "revocation list" => "吊销名单",
        _ => "",
    }
}

const KEY_TAG: &str = "guihe-key-v1";
const CERT_TAG: &str = "guihe-cert-v1";
const REVOCATIONS_TAG: &str = "guihe-revocations-v1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

fn tagged(path: &Path, tag: &str, what: &'static str) -> Result<Vec<u8>, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |reason: &str| KeyError::Format {
        path: path.to_path_buf(),
        what,
        reason: reason.to_string(),
    };
    // A guihe file is one line of text; anything else (a photo, random bytes, a file
    // of another program) is named as not ours, not as a decoding failure.
    let text = String::from_utf8(bytes).map_err(|_| format("not text"))?;
    let (t, body) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| format("no tag"))?;
    if t != tag {
        return Err(format(&format!("starts with {t:?}, expected {tag:?}")));
    }
    unhex(body.trim()).ok_or_else(|| format("not hex"))
}

/// Writes a new key file, readable by its owner only. Never overwrites.
pub fn write_key(path: &Path, key: &Keypair) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_path_buf())
        } else {
            io(e)
        }
    })?;
    writeln!(file, "{KEY_TAG} {}", hex(&key.secret())).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a key file.
pub fn read_key(path: &Path) -> Result<Keypair, KeyError> {
    let bytes = tagged(path, KEY_TAG, "key")?;
    let secret: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Format {
        path: path.to_path_buf(),
        what: "key",
        reason: "not 32 bytes".into(),
    })?;
    Ok(Keypair::from_secret(secret))
}

/// Writes a certificate file.
pub fn write_cert(path: &Path, cert: &Certificate) -> Result<(), KeyError> {
    let bytes = postcard::to_allocvec(cert).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "certificate",
        reason: e.to_string(),
    })?;
    std::fs::write(path, format!("{CERT_TAG} {}\n", hex(&bytes))).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a certificate file (its signature is checked by the caller, against the root).
pub fn read_cert(path: &Path) -> Result<Certificate, KeyError> {
    let bytes = tagged(path, CERT_TAG, "certificate")?;
    postcard::from_bytes(&bytes).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "certificate",
        reason: e.to_string(),
    })
}

/// Writes a revocation list file.
pub fn write_revocations(path: &Path, list: &RevocationList) -> Result<(), KeyError> {
    let bytes = postcard::to_allocvec(list).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "revocation list",
        reason: e.to_string(),
    })?;
    std::fs::write(path, format!("{REVOCATIONS_TAG} {}\n", hex(&bytes))).map_err(|source| {
        KeyError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Reads a revocation list file (its signature is checked by the caller, against the
/// root).
pub fn read_revocations(path: &Path) -> Result<RevocationList, KeyError> {
    let bytes = tagged(path, REVOCATIONS_TAG, "revocation list")?;
    postcard::from_bytes(&bytes).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        what: "revocation list",
        reason: e.to_string(),
    })
}

/// A public key as hex.
pub fn public_hex(node: &NodeId) -> String {
    hex(node.as_bytes())
}

/// A public key from hex.
pub fn parse_public(s: &str) -> Option<NodeId> {
    let bytes: [u8; 32] = unhex(s.trim())?.try_into().ok()?;
    Some(NodeId::from_bytes(bytes))
}

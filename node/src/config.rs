//! The node's configuration file, `guihe.toml` in its data folder.

use std::path::{Path, PathBuf};

use guihe_protocol::deadline::Deadlines;
use serde::{Deserialize, Serialize};

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid configuration; the message names the line and the field.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, where.
        message: String,
    },
}

/// The configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The county root's public key (hex), which every certificate must be signed by.
    pub county_root: String,
    /// The staff account commands are recorded as when none is given.
    #[serde(default = "default_staff")]
    pub staff: String,
    /// Addresses to listen on (libp2p multiaddrs).
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Peers to dial: the township for a village, the county for a township.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Find offices on the same LAN by mDNS. Off unless set: an office dials the peers it
    /// is configured with.
    #[serde(default)]
    pub mdns: bool,
    /// Where the web pages and API listen (localhost by default).
    #[serde(default = "default_http")]
    pub http: String,
    /// sled's page cache, in MiB.
    #[serde(default = "default_cache")]
    pub cache_mib: u64,
    /// Limits that keep one peer, or many, from starving the node.
    #[serde(default)]
    pub limits: Limits,
    /// Statutory periods, if the county's differ from the defaults.
    #[serde(default)]
    pub deadlines: Deadlines,
}

/// The `[limits]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections accepted from other nodes at once. A township serves its villages
    /// (about ten) and the county serves its townships; the default leaves room.
    pub connections_in: u32,
    /// Connections to one peer at once.
    pub connections_per_peer: u32,
    /// New connections are refused while the process uses more memory than this (MiB).
    pub memory_mib: u64,
    /// Seconds a connection may stay idle before it is closed. Slow links need patience.
    pub idle_seconds: u64,
    /// Sync sessions one peer may hold at once; more streams from it are closed at once.
    pub sessions_per_peer: u32,
    /// Seconds a session waits for a whole message from its peer before it is closed.
    /// A message is at most 1 MiB, so the default allows links down to about 9 kB/s.
    pub stall_seconds: u64,
    /// Messages (MiB) waiting for a peer that does not read them before its session is
    /// closed. The session is reconciled again on the next connection; nothing is lost.
    pub backlog_mib: u64,
    /// Free disk space (MiB) kept in reserve: below it the node takes no new entries and
    /// does not sync, so that it never fills the disk, and says so. Reads go on.
    pub disk_reserve_mib: u64,
    /// Seconds between pings on a connection. libp2p's default of 15 s costs a link about
    /// 1.4 MB a day while nothing else moves, twenty times a village's yearly records; an
    /// hour costs about 30 KB a day. A failed ping closes the connection (the dialling side
    /// redials); the sync session notices a silent peer on its own, the moment it waits
    /// for an answer (`stall_seconds`). Behind a mobile network that drops idle
    /// connections sooner, set it below that network's timeout.
    pub ping_seconds: u64,
    /// Seconds between identify exchanges on a connection (libp2p's default: 5 minutes, at
    /// about a kilobyte each).
    pub identify_seconds: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_in: 256,
            connections_per_peer: 2,
            memory_mib: 1024,
            idle_seconds: 300,
            sessions_per_peer: 2,
            stall_seconds: 120,
            backlog_mib: 32,
            disk_reserve_mib: 256,
            ping_seconds: 3600,
            identify_seconds: 6 * 3600,
        }
    }
}

fn default_staff() -> String {
    "mediator".into()
}
fn default_listen() -> Vec<String> {
    vec![
        "/ip4/0.0.0.0/tcp/4710".into(),
        "/ip4/0.0.0.0/udp/4710/quic-v1".into(),
    ]
}
fn default_http() -> String {
    "127.0.0.1:8710".into()
}
fn default_cache() -> u64 {
    32
}

impl Config {
    /// A configuration with the defaults for a county root.
    pub fn new(county_root: String) -> Config {
        Config {
            county_root,
            staff: default_staff(),
            listen: default_listen(),
            bootstrap: Vec::new(),
            mdns: false,
            http: default_http(),
            cache_mib: default_cache(),
            limits: Limits::default(),
            deadlines: Deadlines::default(),
        }
    }

    /// The file's place in a data folder.
    pub fn path(data: &Path) -> PathBuf {
        data.join("guihe.toml")
    }

    /// Reads the configuration of a data folder.
    pub fn load(data: &Path) -> Result<Config, ConfigError> {
        let path = Config::path(data);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        Config::parse(&text, &path)
    }

    /// Parses configuration text.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Writes the configuration into a data folder.
    pub fn save(&self, data: &Path) -> Result<(), ConfigError> {
        let path = Config::path(data);
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&path, text).map_err(|source| ConfigError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_field_is_named_in_the_error() {
        let err = Config::parse(
            "county_root = \"ab\"\ncache_mb = 3\n",
            Path::new("guihe.toml"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cache_mb"), "{text}");
        let err = Config::parse("county_root = 5\n", Path::new("guihe.toml")).unwrap_err();
        assert!(err.to_string().contains("county_root"), "{err}");
        let ok = Config::parse("county_root = \"ab\"\n", Path::new("guihe.toml")).unwrap();
        assert_eq!(ok.cache_mib, 32);
        assert_eq!(ok.deadlines, Deadlines::default());
    }

    #[test]
    fn the_example_configurations_in_deploy_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let config = Config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
                for addr in &config.listen {
                    assert!(addr.starts_with("/ip4/"), "{}: {addr}", path.display());
                }
                config
                    .http
                    .parse::<std::net::SocketAddr>()
                    .unwrap_or_else(|e| panic!("{}: http: {e}", path.display()));
                seen += 1;
            }
        }
        assert_eq!(seen, 4, "village, township, county and observer");
    }
}

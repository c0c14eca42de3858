//! Pseudonyms for plates and tag ids: a keyed HMAC-SHA256 with the site key,
//! computed inside the gateway before a sighting is published, stored in
//! the outbox or logged.
//!
//! A plain hash of a plate is reversible by enumerating plates (there are
//! only a few hundred million), so the hash is keyed with a secret that
//! never leaves the site (docs/security.md). The same identity always maps to
//! the same pseudonym under one key, which is what the indoor-charging
//! detector needs to tie a sighting to a registered e-bike; plates are
//! normalised first (case, spaces, separators) so that `粤b 12345` and
//! `粤B-12345` are one vehicle.
//!
//! **Key rotation** changes every pseudonym: sightings before and after
//! no longer match, and the e-bike register used by analytics must be
//! pseudonymised again with the new key (`gridwatch-gateway pseudonym`).
//! That is also how the link to old data is cut on purpose.
//!
//! ```
//! use gridwatch_gateway::pseudonym::{IdentityKind, SiteKey};
//!
//! let key = SiteKey::from_bytes(b"a site key of at least 16 bytes".to_vec())?;
//! let a = key.pseudonym(IdentityKind::Plate, "粤b 12345");
//! assert_eq!(a, key.pseudonym(IdentityKind::Plate, "粤B-12345"));
//! assert_eq!(a.len(), 32);
//! assert!(!a.contains("12345"));
//! # Ok::<(), gridwatch_gateway::pseudonym::KeyError>(())
//! ```

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};

/// Shortest site key accepted: 128 bits, the strength of the pseudonym.
pub const MIN_KEY_BYTES: usize = 16;
/// Longest identity hashed; anything longer is not a plate or a tag.
pub const MAX_IDENTITY_BYTES: usize = 64;

/// What kind of identity a reader reports: it decides the normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// An RFID/UHF tag id (hex or decimal digits).
    Tag,
    /// A licence plate read by a camera.
    Plate,
}

impl IdentityKind {
    /// `tag` or `plate`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Tag => "tag",
            IdentityKind::Plate => "plate",
        }
    }

    /// The canonical form of `raw`: upper case, with spaces and the usual
    /// separators (`-`, `.`, `:`, `·`, `•`) removed, so one plate or tag
    /// always gives one pseudonym. Tags also lose leading zeros, which
    /// readers pad differently.
    pub fn normalise(self, raw: &str) -> String {
        let mut out: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | ':' | '·' | '•' | '_'))
            .flat_map(char::to_uppercase)
            .collect();
        if self == IdentityKind::Tag {
            let trimmed = out.trim_start_matches('0');
            out = if trimmed.is_empty() {
                "0".to_owned()
            } else {
                trimmed.to_owned()
            };
        }
        out
    }
}

/// Why the site key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read the site key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The key is too short to protect anything.
    #[error("the site key{at} has {len} bytes; it needs at least {MIN_KEY_BYTES} (make one with `head -c 32 /dev/urandom | base64 > site.key; chmod 600 site.key`)")]
    TooShort {
        /// ` in FILE`, or empty.
        at: String,
        /// Bytes found.
        len: usize,
    },
}

/// The secret every pseudonym on a site is keyed with. `Debug` never shows it.
#[derive(Clone)]
pub struct SiteKey {
    key: Vec<u8>,
}

impl fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteKey({} bytes)", self.key.len())
    }
}

impl SiteKey {
    /// A key from its bytes (at least [`MIN_KEY_BYTES`]).
    pub fn from_bytes(key: Vec<u8>) -> Result<Self, KeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                at: String::new(),
                len: key.len(),
            });
        }
        Ok(Self { key })
    }

    /// Reads the key from `path`: its first line, trimmed, taken as bytes
    /// (any text: base64 from `/dev/urandom` is the documented way). A file
    /// that others than its owner can read is used, with a warning naming
    /// the `chmod` that fixes it.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        if let Some(warning) = permission_warning(path) {
            tracing::warn!("{warning}");
        }
        let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
        let key = line.trim_ascii().to_vec();
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                at: format!(" in {}", path.display()),
                len: key.len(),
            });
        }
        Ok(Self { key })
    }

    /// The pseudonym of `raw` (normalised as `kind`): the first 128 bits of
    /// HMAC-SHA256(site key, `kind:normalised`), as 32 lower-case hex
    /// digits. The kind is hashed in, so a tag and a plate with the same
    /// characters do not collide.
    pub fn pseudonym(&self, kind: IdentityKind, raw: &str) -> String {
        let normalised = kind.normalise(raw);
        // Keys of any length are accepted by HMAC; this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(kind.as_str().as_bytes());
        mac.update(b":");
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A warning when `path` is readable or writable by group or others
/// (anything looser than 0600), `None` when it is private.
pub fn permission_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "the secret file {} has mode {mode:o}: people other than the gateway's user can \
             read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key() -> SiteKey {
        SiteKey::from_bytes(b"0123456789abcdef-site-a".to_vec()).expect("long enough")
    }

    #[test]
    fn plates_are_normalised_before_hashing() {
        let k = key();
        let a = k.pseudonym(IdentityKind::Plate, "粤B·12345");
        for variant in ["粤b 12345", " 粤B-12345 ", "粤B12345", "粤B.123 45"] {
            assert_eq!(k.pseudonym(IdentityKind::Plate, variant), a, "{variant}");
        }
        assert_ne!(k.pseudonym(IdentityKind::Plate, "粤B12346"), a);
    }

    #[test]
    fn tags_ignore_padding_and_separators() {
        let k = key();
        let a = k.pseudonym(IdentityKind::Tag, "00A1B2C3");
        assert_eq!(k.pseudonym(IdentityKind::Tag, "a1:b2:c3"), a);
        assert_eq!(IdentityKind::Tag.normalise("0000"), "0");
    }

    #[test]
    fn the_key_and_the_kind_change_the_pseudonym() {
        let other = SiteKey::from_bytes(b"another site key, 16+ bytes".to_vec()).expect("long");
        let k = key();
        let p = k.pseudonym(IdentityKind::Tag, "A1B2C3");
        assert_ne!(other.pseudonym(IdentityKind::Tag, "A1B2C3"), p);
        assert_ne!(k.pseudonym(IdentityKind::Plate, "A1B2C3"), p);
        assert!(p.chars().all(|c| c.is_ascii_hexdigit()) && p.len() == 32);
    }

    #[test]
    fn matches_an_independent_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe" is too short for a site key, so
        // check our framing against the crate directly with a long key.
        let k = key();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef-site-a").expect("key");
        mac.update(b"plate:AB123");
        let want: String = mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(k.pseudonym(IdentityKind::Plate, "ab 123"), want);
    }

    #[test]
    fn short_keys_and_missing_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("site.key");
        std::fs::write(&path, "short\n").expect("write");
        let err = SiteKey::load(&path).expect_err("too short").to_string();
        assert!(err.contains("site.key") && err.contains("5 bytes"), "{err}");
        let err = SiteKey::load(&dir.path().join("nope")).expect_err("missing");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn loose_permissions_are_warned_about_and_0600_is_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("site.key");
        std::fs::write(&path, "a long enough site key\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let w = permission_warning(&path).expect("0644 is loose");
        assert!(w.contains("644") && w.contains("chmod 600"), "{w}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(permission_warning(&path), None);
        let k = SiteKey::load(&path).expect("loads");
        assert_eq!(format!("{k:?}"), "SiteKey(22 bytes)");
    }
}

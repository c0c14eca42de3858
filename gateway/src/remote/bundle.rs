//! The signed config bundle: what `config-sign` writes and what arrives on
//! `…/cmd/_config`, and the keys that sign and check it.
//!
//! An envelope is JSON: the bundle as base64 (`payload`), its ed25519
//! signature over exactly those bytes (`signature`), and the signing key's
//! id (`key`, for error messages only). Signing the exact bytes spares both
//! sides a canonical JSON form.
//!
//! ```json
//! {"schema": 1, "key": "3f2a9c01d4e5b6a7", "payload": "eyJ2ZXJzaW9uIjo…", "signature": "q1…"}
//! ```
//!
//! The payload is `{"version": 7, "config": "<gateway.toml>", "profiles":
//! {"my-meter.toml": "<profile>"}}`. Pure code over bytes: no file, no
//! socket, no clock.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The envelope's schema version.
pub const ENVELOPE_SCHEMA: u32 = 1;
/// The largest envelope the gateway takes (MQTT packets up to this size are
/// accepted when `[remote]` is on): a config and a handful of profiles.
pub const MAX_ENVELOPE_BYTES: usize = 512 * 1024;

/// A signed bundle as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// [`ENVELOPE_SCHEMA`].
    pub schema: u32,
    /// Id of the key that signed ([`key_id`]); informative, not trusted.
    #[serde(default)]
    pub key: String,
    /// The bundle's JSON, base64.
    pub payload: String,
    /// ed25519 signature over the decoded payload bytes, base64.
    pub signature: String,
}

/// A config and the profiles it needs, at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Must be above the version the gateway runs; the operator counts.
    pub version: u64,
    /// The gateway config (TOML text), checked as `check` checks a file.
    pub config: String,
    /// Device profiles by file name (`name.toml`), placed in a `profiles`
    /// folder beside the config (the config names `profiles_dir = "profiles"`).
    #[serde(default)]
    pub profiles: BTreeMap<String, String>,
}

/// Why a bundle was not opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    /// Larger than [`MAX_ENVELOPE_BYTES`].
    #[error("the signed config is {0} bytes; at most {MAX_ENVELOPE_BYTES} are taken")]
    TooLarge(usize),
    /// Not the JSON of an envelope.
    #[error("not a signed config ({0}); make one with `gridwatch-gateway config-sign`")]
    NotAnEnvelope(String),
    /// An envelope of another schema.
    #[error("signed config schema {0} is not known; this gateway reads schema {ENVELOPE_SCHEMA}")]
    Schema(u32),
    /// A field is not base64 or has the wrong length.
    #[error("the {0} of the signed config is not valid base64 of the right length")]
    Encoding(&'static str),
    /// The signature does not verify with the gateway's public key.
    #[error("the signature does not match this gateway's config key {trusted} (signed with key {claimed:?}); the config is refused")]
    Signature {
        /// Id of the key the gateway trusts.
        trusted: String,
        /// The key id the envelope claims.
        claimed: String,
    },
    /// Signed, but the payload is not a bundle.
    #[error("the signed payload is not a config bundle: {0}")]
    NotABundle(String),
    /// A profile name that could escape its folder.
    #[error("profile name {0:?} is not a plain file name ending in .toml")]
    ProfileName(String),
    /// A key file that is not a key.
    #[error("{0}")]
    Key(String),
}

/// The short id of a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new key pair from 32 random bytes: (private key file text, public key
/// file text), each one base64 line.
pub fn key_pair(seed: [u8; 32]) -> (String, String) {
    let signing = SigningKey::from_bytes(&seed);
    (
        format!("{}\n", STANDARD.encode(signing.to_bytes())),
        format!("{}\n", STANDARD.encode(signing.verifying_key().to_bytes())),
    )
}

fn key_bytes(text: &str, what: &str) -> Result<[u8; 32], BundleError> {
    let line = text.lines().next().unwrap_or_default().trim();
    STANDARD
        .decode(line)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            BundleError::Key(format!(
                "{what} is not one line of base64 of 32 bytes (as `config-keygen` writes)"
            ))
        })
}

/// Reads a public key file's text.
pub fn public_key(text: &str) -> Result<VerifyingKey, BundleError> {
    VerifyingKey::from_bytes(&key_bytes(text, "the public key")?)
        .map_err(|e| BundleError::Key(format!("the public key is not an ed25519 key: {e}")))
}

/// Reads a private key file's text.
pub fn private_key(text: &str) -> Result<SigningKey, BundleError> {
    Ok(SigningKey::from_bytes(&key_bytes(text, "the private key")?))
}

/// Signs `bundle`: the envelope's JSON.
pub fn sign(bundle: &Bundle, key: &SigningKey) -> Vec<u8> {
    let payload = serde_json::to_vec(bundle).unwrap_or_default();
    let signature = key.sign(&payload);
    let envelope = Envelope {
        schema: ENVELOPE_SCHEMA,
        key: key_id(&key.verifying_key()),
        payload: STANDARD.encode(&payload),
        signature: STANDARD.encode(signature.to_bytes()),
    };
    serde_json::to_vec_pretty(&envelope).unwrap_or_default()
}

/// Checks an envelope against the trusted `key` and returns its bundle.
/// Nothing in the payload is read before the signature verifies.
pub fn open(envelope: &[u8], key: &VerifyingKey) -> Result<Bundle, BundleError> {
    if envelope.len() > MAX_ENVELOPE_BYTES {
        return Err(BundleError::TooLarge(envelope.len()));
    }
    let e: Envelope = serde_json::from_slice(envelope)
        .map_err(|err| BundleError::NotAnEnvelope(err.to_string()))?;
    if e.schema != ENVELOPE_SCHEMA {
        return Err(BundleError::Schema(e.schema));
    }
    let payload = STANDARD
        .decode(e.payload.as_bytes())
        .map_err(|_| BundleError::Encoding("payload"))?;
    let signature = STANDARD
        .decode(e.signature.as_bytes())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or(BundleError::Encoding("signature"))?;
    key.verify_strict(&payload, &Signature::from_bytes(&signature))
        .map_err(|_| BundleError::Signature {
            trusted: key_id(key),
            claimed: e.key.clone(),
        })?;
    let bundle: Bundle =
        serde_json::from_slice(&payload).map_err(|err| BundleError::NotABundle(err.to_string()))?;
    if let Some(bad) = bundle.profiles.keys().find(|n| !plain_toml_name(n)) {
        return Err(BundleError::ProfileName(bad.clone()));
    }
    Ok(bundle)
}

/// `name.toml` with letters, digits, `-`, `_` and `.` only, and no leading
/// dot: a file that stays in its folder.
fn plain_toml_name(name: &str) -> bool {
    name.len() > 5
        && name.ends_with(".toml")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> (SigningKey, VerifyingKey) {
        let (private, public) = key_pair([seed; 32]);
        (private_key(&private).unwrap(), public_key(&public).unwrap())
    }

    fn bundle() -> Bundle {
        Bundle {
            version: 3,
            config: "[gateway]\nid = \"gw\"\n".into(),
            profiles: [("m.toml".to_owned(), "model = \"m\"".to_owned())].into(),
        }
    }

    #[test]
    fn a_signed_bundle_opens_with_the_matching_public_key() {
        let (private, public) = keys(1);
        let signed = sign(&bundle(), &private);
        assert_eq!(open(&signed, &public).unwrap(), bundle());
    }

    #[test]
    fn another_key_is_refused_and_both_key_ids_are_named() {
        let (private, _) = keys(1);
        let (_, trusted) = keys(2);
        let e = open(&sign(&bundle(), &private), &trusted).unwrap_err();
        let BundleError::Signature {
            trusted: t,
            claimed,
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(t, &key_id(&trusted));
        assert_eq!(claimed, &key_id(&private.verifying_key()));
    }

    #[test]
    fn a_changed_payload_does_not_verify() {
        let (private, public) = keys(1);
        let mut e: Envelope = serde_json::from_slice(&sign(&bundle(), &private)).unwrap();
        let mut other = bundle();
        other.version = 4;
        e.payload = STANDARD.encode(serde_json::to_vec(&other).unwrap());
        let tampered = serde_json::to_vec(&e).unwrap();
        assert!(matches!(
            open(&tampered, &public),
            Err(BundleError::Signature { .. })
        ));
    }

    #[test]
    fn garbage_and_escaping_profile_names_are_refused_in_words() {
        let (private, public) = keys(1);
        assert!(matches!(
            open(b"{\"action\":\"x\"}", &public),
            Err(BundleError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            open(&vec![b' '; MAX_ENVELOPE_BYTES + 1], &public),
            Err(BundleError::TooLarge(_))
        ));
        let mut b = bundle();
        b.profiles
            .insert("../../etc/passwd.toml".into(), String::new());
        assert_eq!(
            open(&sign(&b, &private), &public),
            Err(BundleError::ProfileName("../../etc/passwd.toml".into()))
        );
        assert!(public_key("not a key").is_err());
    }
}

//! `gridwatch-gateway credentials`: a gateway's broker login, made on the
//! operator's machine.
//!
//! Writes a random password to a file only its owner can read (the file the
//! gateway's `[mqtt] password_file` names) and prints the two things the
//! broker needs: the Mosquitto password-file entry and the ACL lines. The
//! entry is Mosquitto's own PBKDF2-SHA512 format (`$7$`, what
//! `mosquitto_passwd` writes), so the broker host needs no extra tool and
//! the password never leaves the machine it was made on in clear.
//!
//! The user name is `<site>/<gateway>`: the shipped ACL's `%u` patterns turn
//! it into the gateway's own two topic levels (docs/security.md).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gridwatch_telemetry::ids::validate_id;
use hmac::{Hmac, Mac};
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use sha2::Sha512;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// PBKDF2 rounds Mosquitto 2.0's `mosquitto_passwd` uses by default; the
/// broker reads the count from each entry, so this only has to match what
/// operators expect to see.
pub const ITERATIONS: u32 = 101;
/// Salt length `mosquitto_passwd` uses.
const SALT_BYTES: usize = 12;
/// Password length in letters and digits (about 190 bits).
const PASSWORD_CHARS: usize = 32;

/// What the command made, for printing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Broker user name, `<site>/<gateway>`.
    pub username: String,
    /// The password file written.
    pub password_file: PathBuf,
    /// The line for Mosquitto's `password_file`.
    pub passwd_entry: String,
    /// The ACL lines that give exactly this gateway's topics.
    pub acl: String,
}

/// Why the credentials could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A site or gateway id that is not a single topic level.
    #[error("--{what} {id:?} {message}")]
    BadId {
        /// `site` or `gateway`.
        what: &'static str,
        /// The id given.
        id: String,
        /// What is wrong with it.
        message: String,
    },
    /// The password file exists and `--force` was not given.
    #[error("{} exists; pass --force to replace it (the old password stops working once the broker's entry is replaced)", .0.display())]
    Exists(PathBuf),
    /// Writing the folder or the file failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Makes a gateway's credentials: writes `<out>/<gateway>.mqtt-password`
/// (mode 0600; refuses to replace one unless `force`) and returns what to
/// give the broker.
pub fn create(
    site: &str,
    gateway: &str,
    prefix: &str,
    out: &Path,
    force: bool,
) -> Result<Credentials, CredentialsError> {
    for (what, id) in [("site", site), ("gateway", gateway)] {
        validate_id(id).map_err(|message| CredentialsError::BadId {
            what,
            id: id.to_owned(),
            message,
        })?;
    }
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| CredentialsError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(write_err(out))?;
    let password_file = out.join(format!("{gateway}.mqtt-password"));
    if password_file.exists() && !force {
        return Err(CredentialsError::Exists(password_file));
    }
    let password = Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_CHARS);
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    // Remove first, so a replaced file is created anew with mode 0600 even
    // if the old one was looser.
    if force {
        let _ = std::fs::remove_file(&password_file);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&password_file)
        .map_err(write_err(&password_file))?;
    f.write_all(format!("{password}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(write_err(&password_file))?;
    let username = format!("{site}/{gateway}");
    Ok(Credentials {
        passwd_entry: passwd_entry(&username, &password, &salt, ITERATIONS),
        acl: acl_lines(&username, prefix),
        username,
        password_file,
    })
}

/// One line of Mosquitto's password file: `user:$7$iterations$salt$hash`,
/// salt and hash in standard base64, the hash PBKDF2-HMAC-SHA512 of 64 bytes.
pub fn passwd_entry(username: &str, password: &str, salt: &[u8], iterations: u32) -> String {
    let hash = pbkdf2_sha512(password.as_bytes(), salt, iterations);
    format!(
        "{username}:$7${iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// The ACL lines for one gateway: what the shipped `%u` patterns grant,
/// spelled out for a broker without them.
pub fn acl_lines(username: &str, prefix: &str) -> String {
    let t = format!("{prefix}/{username}");
    format!(
        "user {username}\n\
         topic write {t}/reading/+\n\
         topic write {t}/event/+\n\
         topic write {t}/status\n\
         topic write {t}/cmd-ack/+\n\
         topic read {t}/cmd/+\n"
    )
}

/// PBKDF2 (RFC 8018) with HMAC-SHA512, one 64-byte block: all Mosquitto uses.
fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 64] {
    let mac = Hmac::<Sha512>::new_from_slice(password).expect("HMAC takes keys of any length");
    let mut m = mac.clone();
    m.update(salt);
    m.update(&1u32.to_be_bytes());
    let mut u: [u8; 64] = m.finalize().into_bytes().into();
    let mut t = u;
    for _ in 1..iterations {
        let mut m = mac.clone();
        m.update(&u);
        u = m.finalize().into_bytes().into();
        t.iter_mut().zip(u.iter()).for_each(|(a, b)| *a ^= b);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Made by Mosquitto 2.0.11: `mosquitto_passwd -b -c f yard-a/gw-1 secret`.
    const MOSQUITTO_ENTRY: &str = "yard-a/gw-1:$7$101$nEI4o2ABYyHYh9T0$+w0uLgoSiQP+URsjuxO+SK8dmZq5y35pXwA6eSCLUzMWbGz1qwNcpL64hrVtxz+PLQrn8RWyJpkFFlPZjhy7uQ==";

    #[test]
    fn the_entry_is_what_mosquitto_passwd_writes() {
        let salt = STANDARD.decode("nEI4o2ABYyHYh9T0").unwrap();
        assert_eq!(
            passwd_entry("yard-a/gw-1", "secret", &salt, 101),
            MOSQUITTO_ENTRY
        );
    }

    #[test]
    fn pbkdf2_matches_a_published_vector() {
        // RFC 6070-style vector for SHA-512 (password, salt, 1 round).
        let h = pbkdf2_sha512(b"password", b"salt", 1);
        assert_eq!(h[..8], [0x86, 0x7f, 0x70, 0xcf, 0x1a, 0xde, 0x02, 0xcf]);
    }

    #[test]
    fn the_password_file_is_private_and_not_replaced_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let c = create("yard-a", "gw-1", "gw", dir.path(), false).unwrap();
        assert_eq!(c.username, "yard-a/gw-1");
        let mode = std::fs::metadata(&c.password_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let pw = gridwatch_telemetry::secret::read_secret_file("pw", &c.password_file).unwrap();
        assert_eq!(pw.len(), PASSWORD_CHARS);
        assert!(c.passwd_entry.starts_with("yard-a/gw-1:$7$101$"));
        assert!(c.acl.contains("topic read gw/yard-a/gw-1/cmd/+"));
        let again = create("yard-a", "gw-1", "gw", dir.path(), false).unwrap_err();
        assert!(matches!(again, CredentialsError::Exists(_)), "{again}");
        let forced = create("yard-a", "gw-1", "gw", dir.path(), true).unwrap();
        assert_ne!(forced.passwd_entry, c.passwd_entry);
    }

    #[test]
    fn ids_that_are_not_one_topic_level_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (site, gw) in [("yard/a", "gw-1"), ("yard-a", "gw+1"), ("yard-a", "#")] {
            assert!(create(site, gw, "gw", dir.path(), false).is_err());
        }
    }
}

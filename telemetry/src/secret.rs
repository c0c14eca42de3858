//! Secret files: a password or token kept in its own file, outside the config.
//!
//! The gateway and analytics read their broker passwords the same way, so an
//! operator learns one rule: the secret is the file's first line, the file is
//! readable by its owner only (mode 0600 or stricter), and an empty secret is
//! refused rather than sent. A config file may be shared, pasted into a ticket
//! or kept in version control; the secret file is not.

use std::path::{Path, PathBuf};

/// Why a secret file cannot be used. Every variant names the file and what it
/// is for, so the message alone tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read (missing, a folder, no permission).
    #[error("{what} {path} cannot be read: {source}")]
    Unreadable {
        /// What the file is for, e.g. "the MQTT password file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error(
        "{what} {path} has mode {mode:04o}; others than its owner could read it: \
         run `chmod 600 {path}`"
    )]
    Loose {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The first line is empty (or only white space).
    #[error("{what} {path} is empty; write the secret on its first line")]
    Empty {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
}

/// Reads the secret on the first line of `path` (without its line end or
/// surrounding white space). `what` names the file in errors.
///
/// Refuses a file that group or others may access, and an empty secret: a
/// password left world-readable on a shared host is a password given away,
/// and an empty one would log in as nobody while looking configured.
pub fn read_secret_file(what: &'static str, path: &Path) -> Result<String, SecretError> {
    check_private(what, path)?;
    let text = std::fs::read(path).map_err(|source| SecretError::Unreadable {
        what,
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    let secret = text.lines().next().unwrap_or_default().trim();
    if secret.is_empty() {
        return Err(SecretError::Empty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(secret.to_owned())
}

/// Checks that only the owner may access `path`.
#[cfg(unix)]
pub fn check_private(what: &'static str, path: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Unreadable {
        what,
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Loose {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Without Unix permissions there is nothing to check.
#[cfg(not(unix))]
pub fn check_private(_what: &'static str, _path: &Path) -> Result<(), SecretError> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("pw");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gw-secret-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_first_line_of_a_private_file_is_the_secret() {
        let d = dir("ok");
        let p = file(&d, "s3cret\nignored\n", 0o600);
        assert_eq!(read_secret_file("the test password", &p).unwrap(), "s3cret");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_file_others_can_read_is_refused_with_its_name_and_mode() {
        let d = dir("loose");
        let p = file(&d, "s3cret\n", 0o644);
        let e = read_secret_file("the test password", &p).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SecretError::Loose { mode: 0o644, .. }), "{msg}");
        assert!(
            msg.contains(&p.display().to_string()) && msg.contains("0644"),
            "{msg}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_empty_secret_is_refused() {
        let d = dir("empty");
        let p = file(&d, "  \nsecond\n", 0o600);
        let e = read_secret_file("the test password", &p).unwrap_err();
        assert!(matches!(e, SecretError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("is empty"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = read_secret_file("the test password", Path::new("/nonexistent/pw")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pw"), "{e}");
    }
}

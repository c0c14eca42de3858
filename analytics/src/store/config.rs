//! The `[store]` section: where the alerts are kept.
//!
//! ```toml
//! [store]
//! path = "/var/lib/gridwatch/alerts.db"        # SQLite, one process
//! # or, for several workers and API instances on one database:
//! # url = "postgres://gridwatch@db.example:5432/gridwatch"
//! # password_file = "/etc/gridwatch/store-password"   # chmod 600
//! ```

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tracing::warn;

/// The `[store]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file. Without it (and without `url`) the store lives in
    /// memory: alerts are kept, handled and served while the process runs
    /// and lost when it stops (what the demo uses; a deployment sets a
    /// path or a url).
    pub path: Option<PathBuf>,
    /// A PostgreSQL database, `postgres://user@host:port/database` (or
    /// `postgresql://`), shared by every worker and API instance of a
    /// city. Not together with `path`. The password does not go here (a
    /// url with one is refused) but in `password_file`.
    pub url: Option<String>,
    /// The file holding the PostgreSQL password (its first line), readable
    /// by the service's user only (chmod 600), like the other secrets.
    pub password_file: Option<PathBuf>,
}

impl StoreConfig {
    /// Checks the section's form without touching a file or the network:
    /// at most one of `path` and `url`, a url PostgreSQL's client can
    /// parse, no password in it, a password file only with a url.
    pub fn validate(&self) -> Result<(), String> {
        if self.url.is_some() && self.path.is_some() {
            return Err(
                "sets both `path` (a SQLite file) and `url` (a PostgreSQL database); \
                 keep the one the alerts are in"
                    .into(),
            );
        }
        if self.password_file.is_some() && self.url.is_none() {
            return Err("`password_file` is for a PostgreSQL `url`, and there is none".into());
        }
        if let Some(url) = &self.url {
            let config = parse_url(url)?;
            if config.get_password().is_some() {
                return Err(format!(
                    "`url` {} has a password in it; put the password in a file of its own \
                     (chmod 600) and name it in `password_file`",
                    redacted(&config)
                ));
            }
        }
        Ok(())
    }

    /// The client's settings for `url`, with the password read from
    /// `password_file`, and how the store names the database in messages
    /// (never with the password).
    pub(crate) fn postgres(&self) -> Result<(tokio_postgres::Config, String), String> {
        let url = self.url.as_deref().ok_or("no `url`")?;
        let mut config = parse_url(url)?;
        if let Some(file) = &self.password_file {
            config.password(read_password(file)?);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("gridwatch-analytics");
        }
        let origin = redacted(&config);
        Ok((config, origin))
    }

    /// One line for `gridwatch-analytics check` and the start-up summary.
    pub fn describe(&self) -> String {
        match (&self.url, &self.path) {
            (Some(url), _) => match parse_url(url) {
                Ok(c) => format!("PostgreSQL database {}", redacted(&c)),
                Err(e) => e,
            },
            (None, Some(p)) => format!("SQLite file {}", p.display()),
            (None, None) => {
                "in memory (set [store] path to keep alerts across restarts)".to_owned()
            }
        }
    }
}

/// `url` as the client's settings, or why not (without echoing a password).
fn parse_url(url: &str) -> Result<tokio_postgres::Config, String> {
    let shown = || match url.split_once('@') {
        Some((_, rest)) => format!("postgres://…@{rest}"),
        None => url.to_owned(),
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "`url` {:?} is not a PostgreSQL url; write postgres://user@host:port/database",
            shown()
        ));
    }
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| format!("`url` {:?} cannot be read: {e}", shown()))?;
    if config.get_hosts().is_empty() {
        return Err(format!("`url` {:?} names no host", shown()));
    }
    if config.get_user().is_none() {
        return Err(format!(
            "`url` {:?} names no user; write postgres://user@host:port/database",
            shown()
        ));
    }
    if config.get_dbname().is_none() {
        return Err(format!(
            "`url` {:?} names no database; write postgres://user@host:port/database",
            shown()
        ));
    }
    Ok(config)
}

/// `postgres://user@host:port/database`: what the store is, for people.
fn redacted(c: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        c.get_user().unwrap_or(""),
        c.get_dbname().unwrap_or("")
    )
}

/// The first line of the password file; a file others may read is used
/// but warned about.
fn read_password(file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "cannot read the PostgreSQL password file {}: {e}",
            file.display()
        )
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(format!(
            "the first line of the PostgreSQL password file {} is empty",
            file.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(file) {
            if m.permissions().mode() & 0o077 != 0 {
                warn!(
                    "the PostgreSQL password file {} is readable by other users; chmod 600 it",
                    file.display()
                );
            }
        }
    }
    Ok(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> StoreConfig {
        StoreConfig {
            url: Some(u.into()),
            ..StoreConfig::default()
        }
    }

    #[test]
    fn a_url_and_a_path_together_are_refused() {
        let c = StoreConfig {
            path: Some("/tmp/a.db".into()),
            ..url("postgres://g@localhost/g")
        };
        let e = c.validate().unwrap_err();
        assert!(e.contains("both `path`") && e.contains("`url`"), "{e}");
    }

    #[test]
    fn the_url_must_be_postgres_with_user_host_and_database() {
        assert!(url("postgres://g@db:5433/city").validate().is_ok());
        assert!(url("postgresql://g@db/city").validate().is_ok());
        let e = url("mysql://g@db/city").validate().unwrap_err();
        assert!(e.contains("not a PostgreSQL url"), "{e}");
        let e = url("postgres://db:5432/city").validate().unwrap_err();
        assert!(e.contains("names no user"), "{e}");
        let e = url("postgres://g@db:5432").validate().unwrap_err();
        assert!(e.contains("names no database"), "{e}");
        let e = url("postgres://g@db:notaport/city").validate().unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
    }

    #[test]
    fn the_password_comes_from_its_file_and_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-Pw\n").unwrap();
        let c = StoreConfig {
            password_file: Some(file),
            ..url("postgres://g@db:5433/city")
        };
        c.validate().unwrap();
        let (pg, origin) = c.postgres().unwrap();
        assert_eq!(pg.get_password(), Some(&b"s3cret-Pw"[..]));
        assert_eq!(origin, "postgres://g@db:5433/city");
        assert!(!c.describe().contains("s3cret"));
        let e = url("postgres://g:inline-pw@db/city").describe();
        assert!(!e.contains("inline-pw"), "{e}");
        let e = url("postgres://g:inline-pw@db/city")
            .validate()
            .unwrap_err();
        assert!(
            e.contains("password_file") && !e.contains("inline-pw"),
            "{e}"
        );
        let e = url("nope://g:inline-pw@db/city").validate().unwrap_err();
        assert!(!e.contains("inline-pw"), "{e}");
    }

    #[test]
    fn a_password_file_without_a_url_or_empty_is_refused() {
        let c = StoreConfig {
            password_file: Some("/x".into()),
            ..StoreConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("password_file"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "\n").unwrap();
        let c = StoreConfig {
            password_file: Some(file),
            ..url("postgres://g@db/city")
        };
        assert!(c.postgres().unwrap_err().contains("is empty"));
    }
}

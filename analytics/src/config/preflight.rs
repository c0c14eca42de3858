//! What `run` checks beyond the config file itself, so that `check` refuses
//! everything `run` would: the directory loads and agrees with `[cells]`,
//! the register loads, and the notification channels' files and addresses
//! are usable.

use super::AnalyticsConfig;
use crate::alerts::directory::Directory;
use crate::notify::channel::read_secret_file;

/// Loads and cross-checks the files the config names; the first problem,
/// in the words `run` would use for it.
pub fn preflight(config: &AnalyticsConfig) -> anyhow::Result<()> {
    config.validate()?;
    // The broker's CA, client key and password files, read as `run` reads them.
    config.mqtt.options()?;
    // The store's PostgreSQL password file, read as `run` reads it (the
    // server itself is not contacted: `check` runs where it may not be).
    if config.store.url.is_some() {
        config.store.postgres().map_err(anyhow::Error::msg)?;
    }
    if let Some(p) = &config.directory.path {
        let directory = Directory::load(p)?;
        let mut cells = config.cells.clone();
        directory
            .route_into(&mut cells)
            .map_err(anyhow::Error::msg)?;
    }
    if let Some(p) = &config.register.path {
        crate::register::Register::load(p)?;
    }
    let w = &config.notify.webhook;
    if let (Some(url), Some(secret)) = (&w.url, &w.secret_file) {
        crate::notify::webhook::Endpoint::parse(url).map_err(anyhow::Error::msg)?;
        let text = read_secret_file(secret, "webhook secret")?;
        if text.lines().next().unwrap_or("").trim().is_empty() {
            anyhow::bail!(
                "the first line of the webhook secret file {} is empty",
                secret.display()
            );
        }
    }
    let wecom = &config.notify.wecom;
    if let (Some(_), Some(key)) = (&wecom.url, &wecom.key_file) {
        crate::notify::robot::read_key(key, "WeCom robot key")?;
    }
    let ding = &config.notify.dingtalk;
    if let (Some(_), Some(token)) = (&ding.url, &ding.access_token_file) {
        crate::notify::robot::read_key(token, "DingTalk robot access_token")?;
        if let Some(secret) = &ding.secret_file {
            crate::notify::robot::read_key(secret, "DingTalk robot secret")?;
        }
    }
    let e = &config.notify.email;
    if e.server.is_some() {
        if let Some(from) = &e.from {
            from.parse::<lettre::message::Mailbox>()
                .map_err(|err| anyhow::anyhow!("[notify.email] from: {err}"))?;
        }
        if let Some(ca) = &e.ca_file {
            std::fs::read(ca).map_err(|err| {
                anyhow::anyhow!("cannot read the SMTP CA file {}: {err}", ca.display())
            })?;
        }
        if let Some(file) = &e.credentials_file {
            let text = read_secret_file(file, "SMTP credentials")?;
            if text.lines().count() < 2 {
                anyhow::bail!(
                    "the SMTP credentials file {} needs the user name on the first line and the password on the second",
                    file.display()
                );
            }
        }
    }
    Ok(())
}

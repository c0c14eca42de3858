//! `gridwatch-gateway provision`: a new gateway's identity and secrets, and
//! the config that uses them, in one step.
//!
//! Writes into one folder (on the gateway, `/etc/gridwatch`): the broker
//! password (made here, or the operator's own if it is long and not an
//! example), the site key for pseudonyms, both mode 0600, and a
//! `gateway.toml` (mode 0640) naming them. Prints the broker's
//! password-file entry and ACL lines, the same format as `credentials` and
//! docs/security.md. The config lists no devices yet: `scan --append` adds
//! them, then `check`.

use super::credentials;
use super::remote::write_file;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use clap::Args;
use gridwatch_telemetry::ids::validate_id;
use rand::RngCore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Shortest password `provision` accepts from the operator.
pub const MIN_PASSWORD_CHARS: usize = 16;
/// Words that mark a password copied from an example or left as a default.
const EXAMPLE_WORDS: [&str; 8] = [
    "changeme",
    "password",
    "example",
    "secret",
    "gridwatch",
    "123456",
    "default",
    "admin",
];
/// Site key length in random bytes (written as base64).
const SITE_KEY_BYTES: usize = 32;

/// `provision`.
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Site id (first topic level after the prefix).
    #[arg(long)]
    pub site: String,
    /// Gateway id.
    #[arg(long)]
    pub gateway: String,
    /// The broker, HOST or HOST:PORT [default port: 8883, MQTT over TLS].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub broker: String,
    /// The CA file that signed the broker's certificate (a login is only
    /// sent over TLS).
    #[arg(long, value_name = "FILE")]
    pub ca_file: PathBuf,
    /// Folder for gateway.toml and the secret files [on the gateway: /etc/gridwatch].
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Use this password (first line of FILE) instead of a random one; at
    /// least 16 characters and no example word.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Use this site key (shared by the site's gateways, so their
    /// pseudonyms agree) instead of making one.
    #[arg(long, value_name = "FILE")]
    pub site_key: Option<PathBuf>,
    /// Turn remote config on with this public key (from `config-keygen`).
    #[arg(long, value_name = "FILE")]
    pub config_key: Option<PathBuf>,
    /// Where the gateway keeps its data (outbox, remote configs).
    #[arg(long, default_value = "/var/lib/gridwatch", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Topic prefix the gateway publishes under.
    #[arg(long, default_value = gridwatch_telemetry::topic::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Replace files that exist.
    #[arg(long)]
    pub force: bool,
}

/// What `provision` made, for printing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The config written.
    pub config_file: PathBuf,
    /// The broker password file.
    pub password_file: PathBuf,
    /// The site key file.
    pub site_key_file: PathBuf,
    /// The line for Mosquitto's `password_file`.
    pub passwd_entry: String,
    /// The ACL lines for this gateway.
    pub acl: String,
}

/// Runs `provision`.
pub fn run(args: &ProvisionArgs) -> ExitCode {
    match provision(args) {
        Ok(p) => {
            println!(
                "wrote {config} (no devices yet: run `gridwatch-gateway scan --port /dev/ttyUSB0 \
                 --append {config}`, then `check`)\n\
                 secrets (mode 0600): {password}, {key}\n\n\
                 add to the broker's password_file:\n{entry}\n\n\
                 ACL lines (the shipped gridwatch.acl patterns grant exactly these already):\n{acl}",
                config = p.config_file.display(),
                password = p.password_file.display(),
                key = p.site_key_file.display(),
                entry = p.passwd_entry,
                acl = p.acl,
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_CONFIG)
        }
    }
}

/// Why an operator's password is refused, if it is.
pub fn password_problem(password: &str) -> Option<String> {
    if password.is_empty() {
        return Some("the password is empty".into());
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Some(format!(
            "the password has {} characters; use at least {MIN_PASSWORD_CHARS} (or leave out \
             --password-file for a random one)",
            password.chars().count()
        ));
    }
    let lower = password.to_lowercase();
    EXAMPLE_WORDS
        .iter()
        .find(|w| lower.contains(*w))
        .map(|w| format!("the password contains {w:?}, a word from examples and defaults"))
}

/// Makes the files and returns what to tell the broker.
pub fn provision(args: &ProvisionArgs) -> Result<Provisioned, String> {
    for (what, id) in [("site", &args.site), ("gateway", &args.gateway)] {
        validate_id(id).map_err(|why| format!("--{what} {id:?} {why}"))?;
    }
    let (host, port) = match args.broker.rsplit_once(':') {
        Some((h, p)) => (
            h.to_owned(),
            p.parse::<u16>()
                .map_err(|_| format!("--broker {:?}: {p:?} is not a port", args.broker))?,
        ),
        None => (args.broker.clone(), 8883),
    };
    if host.is_empty() {
        return Err("--broker names no host".into());
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let config_file = args.out.join("gateway.toml");
    if config_file.exists() && !args.force {
        return Err(format!(
            "{} exists; pass --force to replace it and the secrets beside it",
            config_file.display()
        ));
    }
    let username = format!("{}/{}", args.site, args.gateway);
    let (password_file, passwd_entry) = match &args.password_file {
        None => {
            let c = credentials::create(
                &args.site,
                &args.gateway,
                &args.prefix,
                &args.out,
                args.force,
            )
            .map_err(|e| e.to_string())?;
            (c.password_file, c.passwd_entry)
        }
        Some(given) => {
            let text = std::fs::read_to_string(given)
                .map_err(|e| format!("cannot read {}: {e}", given.display()))?;
            let password = text.lines().next().unwrap_or_default().trim().to_owned();
            if let Some(why) = password_problem(&password) {
                return Err(format!("{} is refused: {why}", given.display()));
            }
            let file = args.out.join(format!("{}.mqtt-password", args.gateway));
            write_file(&file, format!("{password}\n").as_bytes(), 0o600)?;
            let mut salt = [0u8; 12];
            rand::rng().fill_bytes(&mut salt);
            let entry =
                credentials::passwd_entry(&username, &password, &salt, credentials::ITERATIONS);
            (file, entry)
        }
    };
    let site_key_file = args.out.join(format!("{}.site-key", args.site));
    let key = match &args.site_key {
        Some(given) => {
            // Refuses a key too short to be one.
            crate::pseudonym::SiteKey::load(given).map_err(|e| e.to_string())?;
            std::fs::read(given).map_err(|e| format!("cannot read {}: {e}", given.display()))?
        }
        None => {
            let mut bytes = [0u8; SITE_KEY_BYTES];
            rand::rng().fill_bytes(&mut bytes);
            format!("{}\n", STANDARD.encode(bytes)).into_bytes()
        }
    };
    write_file(&site_key_file, &key, 0o600)?;
    // The public config key is copied beside the config: it is what the
    // gateway keeps; the private half stays with the operator.
    let config_key = match &args.config_key {
        Some(given) => {
            let text = std::fs::read_to_string(given)
                .map_err(|e| format!("cannot read {}: {e}", given.display()))?;
            crate::remote::bundle::public_key(&text)
                .map_err(|e| format!("--config-key {}: {e}", given.display()))?;
            let kept = args.out.join(super::remote::PUBLIC_KEY_FILE);
            if std::path::absolute(given).ok() != std::path::absolute(&kept).ok() {
                write_file(&kept, text.as_bytes(), 0o644)?;
            }
            Some(kept)
        }
        None => None,
    };
    let files = Files {
        password: &password_file,
        site_key: &site_key_file,
        config_key: config_key.as_deref(),
    };
    let text = config_text(args, &host, port, &username, &files);
    check_text(&text)?;
    write_file(&config_file, text.as_bytes(), 0o640)?;
    Ok(Provisioned {
        config_file,
        password_file,
        site_key_file,
        passwd_entry,
        acl: credentials::acl_lines(&username, &args.prefix),
    })
}

/// The files the written config names.
struct Files<'a> {
    password: &'a Path,
    site_key: &'a Path,
    config_key: Option<&'a Path>,
}

fn config_text(
    args: &ProvisionArgs,
    host: &str,
    port: u16,
    username: &str,
    files: &Files<'_>,
) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let data = &args.data_dir;
    let mut text = format!(
        "# Written by `gridwatch-gateway provision`; the reference is docs/gateway.md.\n\
         [gateway]\nid = \"{gateway}\"\nsite = \"{site}\"\nrequire_clock_sync = true\n\n\
         [mqtt]\nhost = \"{host}\"\nport = {port}\ntopic_prefix = \"{prefix}\"\n\
         ca_file = \"{ca}\"\nusername = \"{username}\"\npassword_file = \"{password}\"\n\n\
         [outbox]\ndir = \"{outbox}\"\n\n\
         [pseudonym]\nsite_key_file = \"{key}\"\n",
        gateway = args.gateway,
        site = args.site,
        prefix = args.prefix,
        ca = abs(&args.ca_file).display(),
        password = abs(files.password).display(),
        outbox = data.join("outbox").display(),
        key = abs(files.site_key).display(),
    );
    if let Some(pub_key) = files.config_key {
        text.push_str(&format!(
            "\n[remote]\npublic_key_file = \"{}\"\ndir = \"{}\"\n",
            abs(pub_key).display(),
            data.join("remote").display()
        ));
    }
    text.push_str("\n# Devices: `gridwatch-gateway scan ... --append` adds them here.\n");
    text
}

/// Checks the written config as `check --config-only` would, with a
/// stand-in device (a config needs one to pass; `scan` adds the real ones).
fn check_text(text: &str) -> Result<(), String> {
    let probe = format!(
        "{text}[[devices]]\nid = \"probe\"\nprofile = \"eastron-sdm120\"\n\
         protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n"
    );
    crate::config::GatewayConfig::from_toml_str(&probe, "the provisioned config")
        .map(drop)
        .map_err(|e| format!("the config provision would write is refused: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(out: &Path) -> ProvisionArgs {
        ProvisionArgs {
            site: "yard-a".into(),
            gateway: "gw-7".into(),
            broker: "broker.example:8883".into(),
            ca_file: out.join("ca.pem"),
            out: out.to_owned(),
            password_file: None,
            site_key: None,
            config_key: None,
            data_dir: out.join("data"),
            prefix: "gw".into(),
            force: false,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn provision_writes_private_secrets_and_a_config_that_uses_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        let operator = dir.path().join("operator");
        super::super::remote::write_key_pair(&operator, false).unwrap();
        a.config_key = Some(operator.join("config-signing.pub"));
        a.out = dir.path().join("etc");
        let p = provision(&a).unwrap();
        assert!(
            a.out.join("config-signing.pub").is_file(),
            "the public key is kept beside the config"
        );
        assert!(!a.out.join("config-signing.key").exists());
        assert_eq!(mode(&p.password_file), 0o600);
        assert_eq!(mode(&p.site_key_file), 0o600);
        assert_eq!(mode(&p.config_file), 0o640);
        assert!(p.passwd_entry.starts_with("yard-a/gw-7:$7$101$"));
        assert!(p.acl.contains("topic read gw/yard-a/gw-7/cmd/+"));
        let key = crate::pseudonym::SiteKey::load(&p.site_key_file).unwrap();
        assert_eq!(
            key.pseudonym(crate::pseudonym::IdentityKind::Tag, "x")
                .len(),
            32
        );
        let text = std::fs::read_to_string(&p.config_file).unwrap();
        assert!(text.contains(&format!(
            "password_file = \"{}\"",
            p.password_file.display()
        )));
        assert!(text.contains("[remote]") && text.contains("port = 8883"));
        assert!(text.contains(&format!(
            "public_key_file = \"{}\"",
            std::path::absolute(a.out.join("config-signing.pub"))
                .unwrap()
                .display()
        )));
        // Once scan has appended a device, the config passes check.
        let with_device = format!(
            "{text}[[devices]]\nid = \"m\"\nprofile = \"eastron-sdm120\"\n\
             protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n"
        );
        std::fs::write(&p.config_file, with_device).unwrap();
        let config = crate::config::GatewayConfig::load(&p.config_file).unwrap();
        assert_eq!(config.mqtt.credentials.unwrap().username, "yard-a/gw-7");
        assert!(provision(&a).unwrap_err().contains("--force"));
    }

    #[test]
    fn empty_short_and_example_passwords_are_refused() {
        for bad in [
            "",
            "short-one",
            "ChangeMe-please-now",
            "my-gridwatch-password-2026",
        ] {
            assert!(password_problem(bad).is_some(), "{bad:?} should be refused");
        }
        assert_eq!(password_problem("k3J9x-vQ2m8-Lr7tZ-pW4"), None);
        let dir = tempfile::tempdir().unwrap();
        let given = dir.path().join("pw");
        std::fs::write(&given, "changeme\n").unwrap();
        let mut a = args(dir.path());
        a.password_file = Some(given.clone());
        let e = provision(&a).unwrap_err();
        assert!(e.contains("refused") && e.contains("16"), "{e}");
        assert!(
            !dir.path().join("gateway.toml").exists(),
            "nothing is written"
        );
        std::fs::write(&given, "k3J9x-vQ2m8-Lr7tZ-pW4\n").unwrap();
        let p = provision(&a).unwrap();
        let pw = gridwatch_telemetry::secret::read_secret_file("pw", &p.password_file).unwrap();
        assert_eq!(pw, "k3J9x-vQ2m8-Lr7tZ-pW4");
    }

    #[test]
    fn bad_ids_and_brokers_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.gateway = "gw/7".into();
        assert!(provision(&a).unwrap_err().contains("--gateway"));
        let mut a = args(dir.path());
        a.broker = "host:port".into();
        assert!(provision(&a).unwrap_err().contains("not a port"));
    }
}

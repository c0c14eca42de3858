//! `config-keygen` and `config-sign`: the operator's side of remote config.
//!
//! The key pair is made once, on the operator's machine; the public half
//! goes to every gateway (`[remote] public_key_file`), the private half
//! never leaves the operator. `config-sign` checks a config (and the
//! profiles it brings) as `check --config-only` would, then signs it at a
//! version; the result is published to `…/cmd/_config` (docs/gateway.md).

use crate::config::GatewayConfig;
use crate::remote::bundle::{self, Bundle};
use clap::Args;
use rand::RngCore;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Private key file name `config-keygen` writes.
pub const PRIVATE_KEY_FILE: &str = "config-signing.key";
/// Public key file name `config-keygen` writes.
pub const PUBLIC_KEY_FILE: &str = "config-signing.pub";

/// `config-keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Folder for config-signing.key (mode 0600, stays with the operator)
    /// and config-signing.pub (goes to every gateway).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing key pair (configs signed with the old key are
    /// then refused by gateways given the new public key).
    #[arg(long)]
    pub force: bool,
}

/// `config-sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The private key (config-signing.key from `config-keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The version; the gateway takes only versions above the one it runs.
    #[arg(long)]
    pub version: u64,
    /// A folder of device profiles to send along; the config names them
    /// with `profiles_dir = "profiles"`.
    #[arg(long, value_name = "DIR")]
    pub profiles: Option<PathBuf>,
    /// Where to write the signed config [default: standard output].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The gateway config to sign.
    pub config: PathBuf,
}

/// Runs `config-keygen`.
pub fn keygen(args: &KeygenArgs) -> ExitCode {
    match write_key_pair(&args.out, args.force) {
        Ok(id) => {
            println!(
                "key {id}: {private} (mode 0600; keep it on this machine, never on a gateway)\n\
                 public key: {public} (copy it to each gateway and name it in [remote] public_key_file)",
                private = args.out.join(PRIVATE_KEY_FILE).display(),
                public = args.out.join(PUBLIC_KEY_FILE).display(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a new key pair into `out`; returns its key id.
pub fn write_key_pair(out: &Path, force: bool) -> Result<String, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let (private_file, public_file) = (out.join(PRIVATE_KEY_FILE), out.join(PUBLIC_KEY_FILE));
    if private_file.exists() && !force {
        return Err(format!(
            "{} exists; pass --force to replace the key pair",
            private_file.display()
        ));
    }
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let (private, public) = bundle::key_pair(seed);
    write_file(&private_file, private.as_bytes(), 0o600)?;
    write_file(&public_file, public.as_bytes(), 0o644)?;
    let key = bundle::public_key(&public).map_err(|e| e.to_string())?;
    Ok(bundle::key_id(&key))
}

/// Writes `bytes` to a file created anew with `mode`.
pub(super) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    // Removed first, so a replaced file gets `mode` even if the old one was looser.
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs `config-sign`.
pub fn sign(args: &SignArgs) -> ExitCode {
    match signed(args) {
        Ok(envelope) => {
            let written = match &args.out {
                Some(out) => write_file(out, &envelope, 0o600).map(|()| {
                    eprintln!(
                        "signed version {} of {} into {}",
                        args.version,
                        args.config.display(),
                        out.display()
                    );
                }),
                None => std::io::stdout()
                    .write_all(&envelope)
                    .map_err(|e| format!("cannot write the signed config: {e}")),
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_CONFIG)
        }
    }
}

/// The signed envelope of `args.config`, after checking it as the gateway
/// will (without this host's files and serial ports).
pub fn signed(args: &SignArgs) -> Result<Vec<u8>, String> {
    if args.version == 0 {
        return Err("--version 0 is the gateway's local file; start at 1".into());
    }
    let key_text =
        gridwatch_telemetry::secret::read_secret_file("the config-signing key", &args.key)
            .map_err(|e| e.to_string())?;
    let key = bundle::private_key(&key_text).map_err(|e| e.to_string())?;
    let config = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
    let mut profiles = BTreeMap::new();
    if let Some(dir) = &args.profiles {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "toml") {
                let name = entry.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                profiles.insert(name, text);
            }
        }
    }
    let bundle = Bundle {
        version: args.version,
        config,
        profiles,
    };
    check_as_gateway(&bundle, &args.config)?;
    Ok(bundle::sign(&bundle, &key))
}

/// Loads `bundle` from a folder laid out as the gateway lays it out
/// (`gateway.toml` and `profiles/`), so that its errors show here first.
fn check_as_gateway(bundle: &Bundle, origin: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).map_err(|e| e.to_string())?;
    for (name, text) in &bundle.profiles {
        std::fs::write(profiles.join(name), text).map_err(|e| e.to_string())?;
    }
    let file = dir.path().join(crate::remote::store::CONFIG_FILE);
    std::fs::write(&file, &bundle.config).map_err(|e| e.to_string())?;
    let config = GatewayConfig::load(&file).map_err(|e| {
        // Name the operator's file, not the temporary copy.
        e.to_string()
            .replace(&file.display().to_string(), &origin.display().to_string())
    })?;
    if config.remote.is_none() {
        return Err(format!(
            "{} has no [remote] table; the gateway refuses a pushed config that would end \
             remote management",
            origin.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[gateway]\nid = \"gw-1\"\nsite = \"s\"\nprofiles_dir = \"profiles\"\n\
                          [mqtt]\nhost = \"127.0.0.1\"\n\
                          [remote]\npublic_key_file = \"/etc/gridwatch/config-signing.pub\"\n\
                          dir = \"/var/lib/gridwatch/remote\"\n\
                          [[devices]]\nid = \"m\"\nprofile = \"eastron-sdm120\"\n\
                          protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n";

    #[test]
    fn keygen_writes_a_private_key_only_its_owner_reads_and_sign_verifies() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let id = write_key_pair(&keys, false).unwrap();
        let mode = |f: &str| {
            std::fs::metadata(keys.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(PRIVATE_KEY_FILE), 0o600);
        assert_eq!(mode(PUBLIC_KEY_FILE), 0o644);
        assert!(write_key_pair(&keys, false)
            .unwrap_err()
            .contains("--force"));

        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let envelope = signed(&SignArgs {
            key: keys.join(PRIVATE_KEY_FILE),
            version: 4,
            profiles: Some(dir.path().join("none")),
            out: None,
            config: config.clone(),
        });
        assert!(
            envelope.unwrap_err().contains("cannot read"),
            "a missing profiles folder is named"
        );
        std::fs::create_dir(dir.path().join("p")).unwrap();
        let envelope = signed(&SignArgs {
            key: keys.join(PRIVATE_KEY_FILE),
            version: 4,
            profiles: Some(dir.path().join("p")),
            out: None,
            config,
        })
        .unwrap();
        let public = std::fs::read_to_string(keys.join(PUBLIC_KEY_FILE)).unwrap();
        let key = bundle::public_key(&public).unwrap();
        assert_eq!(bundle::key_id(&key), id);
        let b = bundle::open(&envelope, &key).unwrap();
        assert_eq!((b.version, b.config.as_str()), (4, CONFIG));
    }

    #[test]
    fn sign_refuses_a_config_that_would_not_pass_check() {
        let dir = tempfile::tempdir().unwrap();
        write_key_pair(dir.path(), false).unwrap();
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, CONFIG.replace("eastron-sdm120", "no-such-meter")).unwrap();
        let args = SignArgs {
            key: dir.path().join(PRIVATE_KEY_FILE),
            version: 1,
            profiles: None,
            out: None,
            config: config.clone(),
        };
        let e = signed(&args).unwrap_err();
        assert!(
            e.contains(&config.display().to_string()) && e.contains("no-such-meter"),
            "{e}"
        );
        std::fs::write(&config, CONFIG.replace("[remote]", "[old_remote]")).unwrap();
        assert!(signed(&args).is_err());
    }
}

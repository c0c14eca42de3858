//! The `remote` check: with `[remote]`, the public config key is a key and
//! the folder for remote configs can be written, so a pushed config can be
//! checked and kept; says which version runs.

use super::Check;
use crate::config::GatewayConfig;
use crate::remote::bundle;
use crate::remote::store::Store;

/// Skipped without `[remote]`.
pub(super) fn remote(config: &GatewayConfig) -> Check {
    let Some(r) = &config.remote else {
        return Check::skip(
            "remote",
            "no [remote]: configs cannot be pushed to this gateway",
        );
    };
    let key = match std::fs::read_to_string(&r.public_key_file)
        .map_err(|e| format!("cannot read {}: {e}", r.public_key_file.display()))
        .and_then(|t| {
            bundle::public_key(&t).map_err(|e| format!("{}: {e}", r.public_key_file.display()))
        }) {
        Ok(k) => k,
        Err(e) => return Check::fail("remote", e),
    };
    let probe = r.dir.join(".selftest");
    let writable = Store::open(&r.dir)
        .and_then(|_| std::fs::write(&probe, b"").map_err(|e| e.to_string()))
        .map(|()| {
            let _ = std::fs::remove_file(&probe);
        });
    if let Err(e) = writable {
        return Check::fail(
            "remote",
            format!("{} cannot be written: {e}", r.dir.display()),
        );
    }
    let running = Store::open(&r.dir)
        .ok()
        .and_then(|s| s.current())
        .map_or("the local file (nothing pushed yet)".to_owned(), |c| {
            format!("remote version {}", c.version)
        });
    Check::pass(
        "remote",
        format!(
            "trusts config key {}, keeps configs in {}; runs {running}",
            bundle::key_id(&key),
            r.dir.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::selftest::Status;

    fn config(dir: &std::path::Path) -> GatewayConfig {
        GatewayConfig::from_toml_str(
            &format!(
                "[gateway]\nid = \"gw\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n\
                 [remote]\npublic_key_file = \"{}\"\ndir = \"{}\"\n\
                 [[devices]]\nid = \"m\"\nprofile = \"eastron-sdm120\"\n\
                 protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n",
                dir.join("k.pub").display(),
                dir.join("remote").display()
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn a_readable_key_and_a_writable_folder_pass_and_a_bad_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        std::fs::write(dir.path().join("k.pub"), "not a key\n").unwrap();
        let fail = remote(&c);
        assert_eq!(fail.status, Status::Fail, "{fail:?}");
        assert!(fail.detail.contains("k.pub"), "{fail:?}");
        std::fs::write(dir.path().join("k.pub"), bundle::key_pair([1; 32]).1).unwrap();
        let pass = remote(&c);
        assert_eq!(pass.status, Status::Pass, "{pass:?}");
        assert!(pass.detail.contains("the local file"), "{pass:?}");
    }
}

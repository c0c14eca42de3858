//! The reader parts of `check`, and the `pseudonym` command that turns a
//! housing office's list of e-bike tags and plates into the pseudonyms the
//! analytics register needs.

use crate::config::GatewayConfig;
use crate::pseudonym::{permission_warning, IdentityKind, SiteKey};
use crate::readers::ReaderSource;
use serde_json::json;
use std::fmt::Write as _;
use std::io::{BufRead, Write};

/// `check` lines for the readers, the site key and the edge rules (empty
/// when none are configured).
pub(super) fn summary_text(config: &GatewayConfig) -> String {
    let mut out = String::new();
    if !config.readers.is_empty() {
        if let Some(l) = &config.local_mqtt {
            let _ = writeln!(
                out,
                "readers' broker {}:{} as client {}",
                l.host, l.port, l.client_id
            );
        }
        if let Some(k) = &config.site_key_file {
            let _ = writeln!(out, "site key {}: {}", k.display(), key_state(k));
        }
        let _ = writeln!(out, "readers ({}):", config.readers.len());
        for r in &config.readers {
            let _ = writeln!(
                out,
                "  {}: {}s at the {} via {}{}",
                r.id,
                r.identity_kind.as_str(),
                r.location.as_str(),
                r.describe(),
                match &r.source {
                    ReaderSource::Mqtt { .. } => "",
                    ReaderSource::Serial { .. } => " (line protocol $TAG)",
                }
            );
        }
    }
    for (i, rule) in config.edge.rules.iter().enumerate() {
        let _ = writeln!(
            out,
            "edge rule {}: a sighting at {} switches on {}",
            rule.name
                .clone()
                .unwrap_or_else(|| format!("rule-{}", i + 1)),
            rule.when_sighted_at.join(" or "),
            rule.fire.join(", ")
        );
    }
    out
}

/// The readers for `check --json`.
pub(super) fn summary_json(config: &GatewayConfig) -> serde_json::Value {
    json!(config
        .readers
        .iter()
        .map(|r| json!({
            "id": r.id.as_str(),
            "location": r.location.as_str(),
            "identity_kind": r.identity_kind.as_str(),
            "source": r.describe(),
        }))
        .collect::<Vec<_>>())
}

fn key_state(path: &std::path::Path) -> String {
    match SiteKey::load(path) {
        Err(e) => format!("NOT USABLE: {e}"),
        Ok(_) => match permission_warning(path) {
            Some(w) => format!("readable, but {w}"),
            None => "readable by the gateway only".to_owned(),
        },
    }
}

/// Writes the pseudonym of every non-blank line of `input` to `out`, one
/// per line in the same order (never the identity itself, so the output
/// can be sent to the centre).
pub(super) fn pseudonymise_lines(
    key: &SiteKey,
    kind: IdentityKind,
    input: impl BufRead,
    mut out: impl Write,
) -> std::io::Result<usize> {
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(why) = crate::readers::check_identity(line.trim()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("line {}: the identity {why}", i + 1),
            ));
        }
        writeln!(out, "{}", key.pseudonym(kind, &line))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonymise_lines_keeps_order_and_skips_blanks() {
        let key = SiteKey::from_bytes(b"a site key for the cli test".to_vec()).expect("key");
        let mut out = Vec::new();
        let n = pseudonymise_lines(
            &key,
            IdentityKind::Plate,
            "粤B12345\n\n京a 67890\n".as_bytes(),
            &mut out,
        )
        .expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(n, 2);
        assert_eq!(
            lines,
            vec![
                key.pseudonym(IdentityKind::Plate, "粤B12345"),
                key.pseudonym(IdentityKind::Plate, "京A67890")
            ]
        );
        assert!(!text.contains("12345"));
        let long = format!("{}\n", "9".repeat(80));
        let e = pseudonymise_lines(&key, IdentityKind::Tag, long.as_bytes(), Vec::new())
            .expect_err("too long");
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn check_lists_readers_the_key_state_and_rules() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/gateway-readers.example.toml"
        );
        let cfg = GatewayConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
        let text = summary_text(&cfg);
        assert!(
            text.contains("site key /etc/gridwatch/site.key: NOT USABLE"),
            "{text}"
        );
        assert!(
            text.contains(
                "lobby-rfid: tags at the lift_lobby via serial /dev/ttyUSB0 at 9600 baud"
            ),
            "{text}"
        );
        assert!(
            text.contains("edge rule ebike-in-lobby: a sighting at lift_lobby or lift_car switches on lobby-buzzer, lift-hold"),
            "{text}"
        );
        assert_eq!(summary_json(&cfg)[0]["location"], "gate");
    }
}

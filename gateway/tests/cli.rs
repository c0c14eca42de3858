//! The `gridwatch-gateway` binary as an installer meets it: `check` on the
//! shipped example and on broken files, with one-line errors that name the
//! file, line and field, and exit code 2 for a bad config.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("run gridwatch-gateway")
}

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridwatch-gw-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

const GOOD_HEAD: &str =
    "[gateway]\nid = \"gw-1\"\nsite = \"yard-a\"\n\n[mqtt]\nhost = \"127.0.0.1\"\n";

fn assert_config_error(out: &Output, file: &Path, line: usize, field: &str, words: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code 2 for a bad config; stderr: {stderr}"
    );
    let location = format!("{}:{line}:", file.display());
    assert!(
        stderr.contains(&location),
        "names file and line {location}: {stderr}"
    );
    assert!(stderr.contains(field), "names the field {field}: {stderr}");
    assert!(
        stderr.contains(words),
        "says what is wrong ({words}): {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line, not a dump: {stderr}"
    );
}

#[test]
fn the_shipped_example_passes_check() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.example.toml");
    let out = check(&example);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("is valid") && stdout.contains("pile-1"),
        "{stdout}"
    );
}

#[test]
fn a_missing_field_is_named() {
    let path = write_config(
        "missing.toml",
        "[gateway]\nsite = \"yard-a\"\n\n[mqtt]\nhost = \"h\"\n",
    );
    assert_config_error(&check(&path), &path, 1, "gateway", "missing field `id`");
}

#[test]
fn a_wrong_type_is_named_with_its_line() {
    let text = format!("{GOOD_HEAD}port = \"1883\"\n");
    let path = write_config("wrong-type.toml", &text);
    assert_config_error(&check(&path), &path, 7, "mqtt.port", "invalid type");
}

#[test]
fn an_unknown_profile_lists_the_known_ones() {
    let text = format!(
        "{GOOD_HEAD}\n[[devices]]\nid = \"pile-1\"\nprofile = \"acme-9000\"\nprotocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n"
    );
    let path = write_config("unknown-profile.toml", &text);
    let out = check(&path);
    assert_config_error(&out, &path, 10, "devices[0].profile", "acme-9000");
    assert!(String::from_utf8_lossy(&out.stderr).contains("gridwatch-ebp12"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = check(Path::new("/nonexistent/gridwatch/gateway.toml"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("/nonexistent/gridwatch/gateway.toml"),
        "{stderr}"
    );
}

#[test]
fn pseudonym_prints_keyed_hashes_from_stdin_or_arguments_and_never_the_identity() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let key = write_config("site.key", "cli test site key, long enough\n");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
            .arg("pseudonym")
            .arg("--key-file")
            .arg(&key)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run gridwatch-gateway");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("exits")
    };
    let from_stdin = run(&["--kind", "plate"], "粤B12345\n京A67890\n");
    assert!(from_stdin.status.success(), "{from_stdin:?}");
    let from_args = run(&["--kind", "plate", "粤b 12345", "京A-67890"], "");
    let text = String::from_utf8(from_stdin.stdout).expect("utf-8");
    assert_eq!(text, String::from_utf8(from_args.stdout).expect("utf-8"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines
        .iter()
        .all(|l| l.len() == 32 && l.chars().all(|c| c.is_ascii_hexdigit())));
    assert!(!text.contains("12345"));

    let missing = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
        .args(["pseudonym", "--key-file", "/nonexistent/site.key", "A1"])
        .output()
        .expect("run gridwatch-gateway");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/site.key"));
}

/// A config using profile `bad-meter` from a `profiles` folder beside it,
/// whose registers are `registers`.
fn config_with_profile(tag: &str, registers: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gridwatch-gw-cli-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(dir.join("profiles")).expect("temp dir");
    let profile = dir.join("profiles/bad-meter.toml");
    std::fs::write(
        &profile,
        format!(
            "model = \"bad-meter\"\nvendor = \"v\"\nkind = \"electricity_meter\"\n\
             document = \"d\"\nfunction = \"input\"\n{registers}"
        ),
    )
    .expect("write profile");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        "[gateway]\nid = \"gw-1\"\nsite = \"yard-a\"\nprofiles_dir = \"profiles\"\n\n\
         [mqtt]\nhost = \"127.0.0.1\"\n\n[[devices]]\nid = \"meter-1\"\nprofile = \"bad-meter\"\n\
         protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n",
    )
    .expect("write config");
    (config, profile)
}

/// `check` fails with exit code 2 and one line naming the device's line in
/// the config and the profile's file, line and field.
fn assert_profile_error(tag: &str, registers: &str, line: usize, field: &str, words: &str) {
    let (config, profile) = config_with_profile(tag, registers);
    let out = check(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:11:", config.display())),
        "names the device's profile line in the config: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:{line}:", profile.display())),
        "names the profile file and line {line}: {stderr}"
    );
    assert!(stderr.contains(field), "names {field}: {stderr}");
    assert!(stderr.contains(words), "says {words}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn check_reports_overlapping_registers_in_a_profile() {
    assert_profile_error(
        "overlap",
        "[[registers]]\nname = \"power_w\"\naddress = 12\ntype = \"f32\"\n\
         [[registers]]\nname = \"pf\"\naddress = 13\ntype = \"f32\"\n",
        12,
        "registers[1].address",
        "overlaps \"power_w\"",
    );
}

#[test]
fn check_reports_a_type_that_does_not_fit_its_count() {
    assert_profile_error(
        "count",
        "[[registers]]\nname = \"energy_kwh\"\naddress = 0\ntype = \"f64\"\ncount = 2\n",
        10,
        "registers[0].count",
        "a f64 occupies 4 registers",
    );
}

#[test]
fn check_reports_an_unknown_unit() {
    assert_profile_error(
        "unit",
        "[[registers]]\nname = \"energy_kwh\"\naddress = 0\ntype = \"f32\"\nunit = \"KWH\"\n",
        10,
        "registers[0].unit",
        "\"KWH\" is not a known unit",
    );
}

#[test]
fn check_reports_a_duplicate_device_id() {
    let device = "\n[[devices]]\nid = \"meter-1\"\nprofile = \"eastron-sdm120\"\nprotocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n";
    let text = format!("{GOOD_HEAD}{device}{device}");
    let path = write_config("duplicate-id.toml", &text);
    assert_config_error(
        &check(&path),
        &path,
        15,
        "devices[1].id",
        "\"meter-1\" is already used by devices[0] at line 9",
    );
}

#[test]
fn check_lists_the_real_meter_profiles() {
    let device = |id: &str, profile: &str, unit: u8| {
        format!("\n[[devices]]\nid = \"{id}\"\nprofile = \"{profile}\"\nprotocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\nunit_id = {unit}\n")
    };
    let text = format!(
        "{GOOD_HEAD}{}{}{}",
        device("flat-1", "eastron-sdm630", 1),
        device("water-1", "tuf-2000m", 2),
        device("gas-1", "panametrics-gf868", 3)
    );
    let path = write_config("meters.toml", &text);
    let out = check(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SDM630 with gaps of up to 32 read through: 0x00..=0x57, 0xC8..=0xE1, 0x156..=0x159.
    assert!(
        stdout.contains("flat-1: eastron-sdm630") && stdout.contains("3 Modbus requests per poll"),
        "{stdout}"
    );
    assert!(stdout.contains("tuf-2000m (TUF"), "{stdout}");
    assert!(stdout.contains("1 Modbus request per poll"), "{stdout}");
}

#[test]
fn check_refuses_what_run_would_refuse_on_this_host() {
    let text = format!(
        "{GOOD_HEAD}ca_file = \"no-such-ca.pem\"\n\n[[buses]]\nid = \"rs485\"\n\
         port = \"/dev/ttyGRIDWATCH-NONE\"\n\n[[devices]]\nid = \"m\"\n\
         profile = \"eastron-sdm120\"\nprotocol = \"modbus_rtu\"\nbus = \"rs485\"\n"
    );
    let path = write_config("host-needs.toml", &text);
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:7:11: mqtt.ca_file:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-ca.pem does not exist"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:11:8: buses[0].port:", path.display())),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 2, "every problem: {stderr}");

    let offline = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
        .args(["check", "--config-only", "--config"])
        .arg(&path)
        .output()
        .expect("run gridwatch-gateway");
    assert!(offline.status.success(), "--config-only skips the host");

    // `run` refuses the missing file the same way, before connecting anywhere.
    let run = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run gridwatch-gateway");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mqtt.ca_file"), "{stderr}");
}

#[test]
fn scan_with_nobody_answering_says_so_and_exits_1() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        l.local_addr().expect("bound").port()
    };
    let out = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
        .args(["scan", "--units", "1-3", "--timeout-ms", "100", "--host"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("run gridwatch-gateway");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no unit answered"));

    let bad = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
        .args(["scan", "--units", "0-300", "--host", "127.0.0.1:502"])
        .output()
        .expect("run gridwatch-gateway");
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1 to 247"));
}

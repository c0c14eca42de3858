//! Checks of the machine a config is meant for: the files it names exist
//! and can be read, and its serial ports exist.
//!
//! Parsing does not look at the disk, so a config can be written and checked
//! on a laptop; `check` (on the target host) and `run` do, and report each
//! problem at the line and column where the path is written.

use super::GatewayConfig;
use crate::toml_file::{FieldError, Location};
use std::path::{Path, PathBuf};

/// What a path in the config must be on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeedKind {
    /// A file the gateway reads at start (certificate, key, password, token).
    File,
    /// A serial device (`/dev/ttyUSB0`, a pseudo-terminal).
    SerialPort,
}

/// One path the config needs on the host, with where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNeed {
    /// Where the path is written in the config.
    pub at: Location,
    /// The field, e.g. `mqtt.ca_file`.
    pub field: String,
    /// The path, resolved against the config file's folder.
    pub path: PathBuf,
    /// What it must be.
    pub kind: NeedKind,
}

impl HostNeed {
    /// Why this host does not meet the need, if it does not.
    pub fn problem(&self) -> Option<FieldError> {
        let why = match self.kind {
            NeedKind::File => file_problem(&self.path),
            NeedKind::SerialPort => port_problem(&self.path),
        }?;
        Some(FieldError {
            location: self.at.clone(),
            field: self.field.clone(),
            message: why,
        })
    }
}

fn file_problem(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{} does not exist", path.display()))
        }
        Err(e) => Some(format!("cannot read {}: {e}", path.display())),
        Ok(m) if m.is_dir() => Some(format!("{} is a folder, not a file", path.display())),
        Ok(_) => match std::fs::File::open(path) {
            Ok(_) => None,
            Err(e) => Some(format!(
                "cannot read {}: {e} (the gateway's user must be able to read it)",
                path.display()
            )),
        },
    }
}

fn port_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "{} does not exist (adapter unplugged, or another name: see ls /dev/serial/by-id/)",
            path.display()
        )),
        Err(e) => Some(format!("cannot use {}: {e}", path.display())),
        Ok(m) if !m.file_type().is_char_device() => {
            Some(format!("{} is not a serial device", path.display()))
        }
        Ok(_) => None,
    }
}

impl GatewayConfig {
    /// Everything this host lacks that the config needs, in config order:
    /// empty when the gateway can start here.
    pub fn host_problems(&self) -> Vec<FieldError> {
        self.host_needs
            .iter()
            .filter_map(HostNeed::problem)
            .collect()
    }

    /// The problems with files only: `run` refuses to start with one, while
    /// a missing serial port is waited for (a USB adapter may appear late).
    pub fn missing_files(&self) -> Vec<FieldError> {
        self.host_needs
            .iter()
            .filter(|n| n.kind == NeedKind::File)
            .filter_map(HostNeed::problem)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n";
    const DEVICE: &str = "[[devices]]\nid = \"m\"\nprofile = \"eastron-sdm120\"\n\
                          protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\n";

    fn load(dir: &Path, text: &str) -> GatewayConfig {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        GatewayConfig::load(&path).unwrap()
    }

    #[test]
    fn a_missing_ca_file_is_reported_where_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{BASE}ca_file = \"ca.pem\"\n{DEVICE}");
        let config = load(dir.path(), &text);
        let problems = config.host_problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "mqtt.ca_file");
        assert_eq!(problems[0].location.line, 6);
        assert_eq!(problems[0].location.column, 11);
        assert!(problems[0].message.contains("ca.pem does not exist"));
        assert_eq!(config.missing_files().len(), 1);

        std::fs::write(dir.path().join("ca.pem"), "pem").unwrap();
        assert!(config.host_problems().is_empty());
    }

    #[test]
    fn password_token_and_site_key_files_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{BASE}ca_file = \"ca.pem\"\nusername = \"u\"\npassword_file = \"pw\"\n\
             [influx]\nurl = \"http://127.0.0.1:8086\"\norg = \"o\"\nbucket = \"b\"\n\
             token_file = \"token\"\n{DEVICE}"
        );
        std::fs::write(dir.path().join("ca.pem"), "pem").unwrap();
        let config = load(dir.path(), &text);
        let fields: Vec<_> = config
            .host_problems()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["mqtt.password_file", "influx.token_file"]);
    }

    #[test]
    fn a_folder_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ca.pem")).unwrap();
        let config = load(dir.path(), &format!("{BASE}ca_file = \"ca.pem\"\n{DEVICE}"));
        assert!(config.host_problems()[0].message.contains("is a folder"));
    }

    #[test]
    fn a_serial_port_must_exist_and_be_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{BASE}[[buses]]\nid = \"rs485\"\nport = \"/dev/ttyGRIDWATCH-NONE\"\n\
             [[buses]]\nid = \"other\"\nport = \"not-a-tty\"\n\
             [[devices]]\nid = \"m\"\nprofile = \"eastron-sdm120\"\n\
             protocol = \"modbus_rtu\"\nbus = \"rs485\"\n"
        );
        std::fs::write(dir.path().join("not-a-tty"), "").unwrap();
        let config = load(dir.path(), &text);
        let problems = config.host_problems();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].field, "buses[0].port");
        assert_eq!(problems[0].location.line, 8);
        assert!(problems[0].message.contains("does not exist"));
        assert!(problems[1].message.contains("is not a serial device"));
        assert!(config.missing_files().is_empty(), "a port is waited for");
        // /dev/null is a character device: accepted.
        let ok = load(
            dir.path(),
            &text
                .replace("/dev/ttyGRIDWATCH-NONE", "/dev/null")
                .replace("not-a-tty", "/dev/null2"),
        );
        assert_eq!(ok.host_problems().len(), 1);
    }
}

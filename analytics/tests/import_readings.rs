//! `gridwatch-analytics import readings`: rejects with their lines,
//! idempotent re-imports, corrected re-sends, GBK, gzip, the shipped
//! mappings and the exit codes.

mod support;

use gridwatch_analytics::store::Store;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::TempDir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
}

fn imports() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/imports")
}

const MAPPING: &str = r#"
source = "test-daily"
kind = "electricity"
unit = "kWh"
quality_bad = ["E"]
[columns]
meter = "meter"
timestamp = "date"
register = "kwh"
quality = "q"
"#;

const REGISTER: &str = r#"{
  "flats": [{"flat": "s/b/101", "occupants": 2}, {"flat": "s/b/102", "occupants": 3}],
  "meters": [
    {"meter": "M1", "flat": "s/b/101", "account": "A1", "address": "一路1号101室"},
    {"meter": "M2", "flat": "s/b/102", "account": "A2", "address": "一路1号102室"}
  ]
}"#;

/// A scratch directory with the test mapping and register.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        std::fs::write(dir.path().join("mapping.toml"), MAPPING).unwrap();
        std::fs::write(dir.path().join("register.json"), REGISTER).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Imports `files` with `mapping` into the fixture's store, with a
    /// reject file and a JSON summary.
    fn import_with(&self, mapping: &Path, files: &[&Path]) -> Output {
        bin()
            .args(["import", "readings", "--json", "--mapping"])
            .arg(mapping)
            .arg("--register")
            .arg(self.path("register.json"))
            .arg("--db")
            .arg(self.path("store.db"))
            .arg("--reject")
            .arg(self.path("rejects.tsv"))
            .args(files)
            .output()
            .expect("run binary")
    }

    fn import(&self, files: &[&Path]) -> Output {
        self.import_with(&self.path("mapping.toml"), files)
    }

    fn rejects(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("rejects.tsv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect()
    }

    fn stored(&self, source: &str) -> Vec<(i64, String, String, f64, bool, i64)> {
        Store::open_file(&self.path("store.db"))
            .unwrap()
            .imported_readings(source)
            .unwrap()
    }
}

fn summary(out: &Output) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["summary"].clone()
}

const CLEAN: &str = "meter,date,kwh,q\nM1,2026-03-01,100.5,0\nM2,2026-03-01,200,0\nM1,2026-03-02,110.25,E\nM2,2026-03-02,209,0\n";

#[test]
fn malformed_and_unmatched_rows_are_reported_by_line_and_the_rest_imported() {
    let f = Fixture::new("import-rejects");
    let text = "meter,date,kwh,q\n\
                M1,2026-03-01,100.5,0\n\
                M1,2026-02-30,101,0\n\
                M9,2026-03-01,5,0\n\
                M2,2026-03-01\n\
                \n\
                M2,2026-03-02,abc,0\n\
                ,2026-03-02,1,0\n\
                \"M2\",\"2026-03-02\",\"12.5\",0\n";
    let file = f.write("day.csv", text.as_bytes());
    let out = f.import(&[&file]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["rows"], 7);
    assert_eq!(s["blank_lines"], 1);
    assert_eq!(s["stored"], 2);
    let name = file.display().to_string();
    assert_eq!(
        f.rejects(),
        [
            format!("{name}\t3\ttimestamp\tM1,2026-02-30,101,0"),
            format!("{name}\t4\tunmatched\tM9,2026-03-01,5,0"),
            format!("{name}\t5\tcolumns\tM2,2026-03-01"),
            format!("{name}\t7\tvalue\tM2,2026-03-02,abc,0"),
            format!("{name}\t8\tmeter\t,2026-03-02,1,0"),
        ]
    );
    assert_eq!(s["rejected"]["timestamp"], 1);
    assert_eq!(s["rejected"]["unmatched"], 1);
    let stored = f.stored("test-daily");
    assert_eq!(stored.len(), 2);
    // 2026-03-02 00:00 at +08:00.
    assert_eq!(stored[1].0, 1_772_380_800_000);
    assert_eq!(
        (stored[1].1.as_str(), stored[1].2.as_str(), stored[1].3),
        ("M2", "s/b/102", 12.5)
    );
}

#[test]
fn importing_the_same_file_again_changes_nothing() {
    let f = Fixture::new("import-twice");
    let file = f.write("day.csv", CLEAN.as_bytes());
    let first = f.import(&[&file]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(summary(&first)["stored"], 4);
    assert_eq!(summary(&first)["quality_bad"], 1);
    let before = f.stored("test-daily");
    let second = f.import(&[&file]);
    assert_eq!(second.status.code(), Some(0));
    let s = summary(&second);
    assert_eq!(
        (
            s["stored"].clone(),
            s["unchanged"].clone(),
            s["corrected"].clone()
        ),
        (0.into(), 4.into(), 0.into())
    );
    assert_eq!(f.stored("test-daily"), before);
}

#[test]
fn a_corrected_resend_replaces_and_counts_what_it_changes() {
    let f = Fixture::new("import-corrected");
    let file = f.write("day.csv", CLEAN.as_bytes());
    assert_eq!(f.import(&[&file]).status.code(), Some(0));
    let resend = CLEAN.replace("M2,2026-03-02,209,0", "M2,2026-03-02,208.5,0");
    let file2 = f.write("day-resend.csv", resend.as_bytes());
    let s = summary(&f.import(&[&file2]));
    assert_eq!(
        (s["corrected"].clone(), s["unchanged"].clone()),
        (1.into(), 3.into())
    );
    let stored = f.stored("test-daily");
    let m2 = stored
        .iter()
        .find(|r| r.1 == "M2" && r.3 == 208.5)
        .expect("corrected value");
    assert_eq!(m2.5, 1, "revision counts the correction");
    assert_eq!(stored.len(), 4);
}

#[test]
fn a_gbk_export_with_the_shipped_state_grid_mapping() {
    let f = Fixture::new("import-gbk");
    let text = "户号,电表资产号,抄表日期,正向有功总(kWh),数据状态\r\nA1,M1,2026-01-01,1234.56,0\r\nA2,M2,2026-01-01,99,1\r\n";
    let (mut bytes, _, _) = encoding_rs::GBK.encode(text);
    let mut bytes = bytes.to_mut().clone();
    bytes.extend_from_slice(b"A2,M2,2026-01-02,\xff\xff,0\r\n"); // not GBK
    let file = f.write("sgcc.csv", &bytes);
    let out = f.import_with(&imports().join("sgcc-daily.toml"), &[&file]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out);
    assert_eq!(
        (s["stored"].clone(), s["quality_bad"].clone()),
        (2.into(), 1.into())
    );
    assert_eq!(s["rejected"]["encoding"], 1);
    assert!(
        f.rejects()[0].contains("\t4\tencoding\t"),
        "{:?}",
        f.rejects()
    );
    let stored = f.stored("sgcc-daily");
    assert_eq!((stored[0].2.as_str(), stored[0].3), ("s/b/101", 1234.56));
}

#[test]
fn a_gzip_export_is_read_like_the_plain_one() {
    let f = Fixture::new("import-gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(CLEAN.as_bytes()).unwrap();
    // A name without .gz: gzip is recognised by its content.
    let file = f.write("day.csv", &gz.finish().unwrap());
    let out = f.import(&[&file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&out)["stored"], 4);
}

#[test]
fn a_generated_export_rejects_exactly_its_bad_and_unmatched_rows() {
    let f = Fixture::new("import-generated");
    let out = bin()
        .args(["import", "generate", "--days", "5", "--accounts", "300"])
        .args(["--bad-rate", "0.01", "--unmatched-rate", "0.01", "--out"])
        .arg(f.path("gen.csv.gz"))
        .arg("--register")
        .arg(f.path("register.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    // "wrote 1500 rows (M malformed, U unmatched) …"
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let n = |word: &str| -> u64 {
        let before = &said[..said.find(word).unwrap()];
        before
            .split(['(', ' ', ','])
            .rfind(|t| !t.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    let (malformed, unmatched) = (n(" malformed"), n(" unmatched"));
    assert!(malformed > 0 && unmatched > 0, "{said}");
    let out = f.import_with(&imports().join("sgcc-daily.toml"), &[&f.path("gen.csv.gz")]);
    assert_eq!(out.status.code(), Some(2));
    let s = summary(&out);
    assert_eq!(s["rows"], 1500);
    assert_eq!(s["rejected"]["unmatched"], unmatched);
    let bad: u64 = ["columns", "timestamp", "value"]
        .iter()
        .map(|r| s["rejected"][r].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(bad, malformed);
    assert_eq!(f.rejects().len() as u64, malformed + unmatched);
    assert_eq!(s["stored"].as_u64().unwrap(), 1500 - malformed - unmatched);
}

#[test]
fn water_by_account_without_header_and_gas_by_address_in_litres() {
    let f = Fixture::new("import-water-gas");
    let (water, _, _) = encoding_rs::GBK.encode("A1,W1,202601,356.2,正常\nA2,W2,202601,80,估抄\n");
    let file = f.write("water.csv", &water);
    let s = summary(&f.import_with(&imports().join("water-monthly.toml"), &[&file]));
    assert_eq!(
        (s["stored"].clone(), s["quality_bad"].clone()),
        (2.into(), 1.into())
    );
    let w = f.stored("water-monthly");
    assert_eq!((w[0].1.as_str(), w[0].2.as_str()), ("W1", "s/b/101"));

    let gas = "表号\t标准地址\t日期\t读数(L)\t状态\nG1\t一路1号102室\t2026/1/1\t152340\t0\n";
    let file = f.write("gas.tsv", gas.as_bytes());
    let out = f.import_with(&imports().join("gas-daily.toml"), &[&file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g = f.stored("gas-daily");
    assert_eq!((g[0].2.as_str(), g[0].3), ("s/b/102", 152.34));
}

#[test]
fn every_shipped_mapping_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir(imports()).unwrap() {
        let p = entry.unwrap().path();
        gridwatch_analytics::import::Mapping::load(&p).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn exit_codes_tell_usage_from_io() {
    let f = Fixture::new("import-exit");
    // Usage: a required argument missing.
    let out = bin()
        .args(["import", "readings", "--mapping", "m.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Config: a column the header does not have, named with the file.
    let file = f.write("other.csv", b"meter,day,kwh,q\nM1,2026-03-01,1,0\n");
    let out = f.import(&[&file]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other.csv") && err.contains("\"date\""),
        "{err}"
    );
    // Config: a broken mapping.
    let bad = f.write("bad.toml", b"source = \"x\"\nkind = \"steam\"\n");
    let out = f.import_with(&bad, &[&file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
    // I/O: a missing export.
    let out = f.import(&[&f.path("missing.csv")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.csv"));
}

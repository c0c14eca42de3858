//! `import generate`: a synthetic State Grid daily register export (the
//! format of `config/imports/sgcc-daily.toml`, GBK) and the register that
//! matches it, with a chosen share of malformed and unmatched rows, for the
//! benchmark and tests. Deterministic for a given seed.

use crate::register::{FlatEntry, MeterEntry, RegisterFile};
use flate2::write::GzEncoder;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Days of readings, one row per account and day.
    pub days: u32,
    /// Accounts (one meter and one flat each).
    pub accounts: u32,
    /// The first day, days since 1970-01-01 (local dates).
    pub first_day: i64,
    /// Share of rows made malformed (bad date, bad value, missing columns
    /// in turn).
    pub bad_rate: f64,
    /// Share of rows whose meter is not in the register.
    pub unmatched_rate: f64,
    /// The random stream.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Data rows.
    pub rows: u64,
    /// Rows made malformed.
    pub malformed: u64,
    /// Rows with a meter the register lacks.
    pub unmatched: u64,
}

/// The header of the State Grid daily export, as its mapping names it.
pub const HEADER: &str = "户号,电表资产号,抄表日期,正向有功总(kWh),数据状态";

/// The register's meter number of account `i`.
pub fn meter_of(i: u32) -> String {
    format!("{:013}", 3_300_000_000_000u64 + u64::from(i))
}

/// The register's account of account `i`.
pub fn account_of(i: u32) -> String {
    format!("{:010}", 1_000_000_000u64 + u64::from(i))
}

/// The register's flat of account `i`.
pub fn flat_of(i: u32) -> String {
    format!("gen/b{:04}/{:04}", i / 100, i % 100)
}

/// A splitmix64 stream: enough randomness for test data, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes the export to `out` (gzip when its name ends in `.gz`) and the
/// register to `register`.
pub fn generate(spec: &Spec, out: &Path, register: &Path) -> std::io::Result<Written> {
    let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let written = if out.extension().is_some_and(|e| e == "gz") {
        let mut gz = GzEncoder::new(file, flate2::Compression::fast());
        let w = write_rows(spec, &mut gz)?;
        gz.finish()?.flush()?;
        w
    } else {
        let mut file = file;
        let w = write_rows(spec, &mut file)?;
        file.flush()?;
        w
    };
    let reg = RegisterFile {
        flats: (0..spec.accounts)
            .map(|i| FlatEntry {
                flat: flat_of(i),
                occupants: 2,
                area_m2: 60.0,
                business: false,
                ..Default::default()
            })
            .collect(),
        tags: Vec::new(),
        meters: (0..spec.accounts)
            .map(|i| MeterEntry {
                meter: meter_of(i),
                flat: flat_of(i),
                account: Some(account_of(i)),
                address: None,
            })
            .collect(),
    };
    std::fs::write(register, serde_json::to_vec(&reg)?)?;
    Ok(written)
}

fn write_rows(spec: &Spec, w: &mut dyn Write) -> std::io::Result<Written> {
    let (header, _, _) = encoding_rs::GBK.encode(HEADER);
    w.write_all(&header)?;
    w.write_all(b"\r\n")?;
    let mut rng = Rng(spec.seed);
    let mut written = Written::default();
    let mut registers: Vec<f64> = (0..spec.accounts)
        .map(|_| 1000.0 + 4000.0 * rng.unit())
        .collect();
    let mut bad_kind = 0u32;
    for day in 0..spec.days {
        let (y, m, d) = gridwatch_telemetry::time::civil_from_days(spec.first_day + i64::from(day));
        let date = format!("{y:04}-{m:02}-{d:02}");
        for (i, reg) in registers.iter_mut().enumerate() {
            *reg += 3.0 + 12.0 * rng.unit();
            let i = i as u32;
            let estimated = rng.unit() < 0.005;
            let roll = rng.unit();
            written.rows += 1;
            let flag = if estimated { '1' } else { '0' };
            if roll < spec.bad_rate {
                written.malformed += 1;
                bad_kind = (bad_kind + 1) % 3;
                match bad_kind {
                    0 => write!(
                        w,
                        "{},{},{y:04}-02-30,{reg:.2},0\r\n",
                        account_of(i),
                        meter_of(i)
                    )?,
                    1 => write!(w, "{},{},{date},N/A,0\r\n", account_of(i), meter_of(i))?,
                    _ => write!(w, "{},{}\r\n", account_of(i), meter_of(i))?,
                }
            } else if roll < spec.bad_rate + spec.unmatched_rate {
                written.unmatched += 1;
                write!(w, "9{:09},9{:012},{date},{reg:.2},0\r\n", i, i)?;
            } else {
                write!(
                    w,
                    "{},{},{date},{reg:.2},{flag}\r\n",
                    account_of(i),
                    meter_of(i)
                )?;
            }
        }
    }
    Ok(written)
}

/// The register's default path beside an export: `daily.csv.gz` →
/// `daily.register.json`.
pub fn register_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.split('.').next().unwrap_or("export");
    out.with_file_name(format!("{stem}.register.json"))
}

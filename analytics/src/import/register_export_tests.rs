//! Merging the platform's exports into the register: history, idempotence,
//! corrections, address matching and rejects by line.

use super::*;
use crate::register::{MeterEntry, Register};

const MAPPING: &str = r#"
[columns]
flat = "房屋编号"
address = "标准地址"
occupants = "登记人数"
business = "经营登记"
landlord = "房东"
sublandlord = "二房东"
cell = "网格"
town = "镇"
"#;

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("gw-reg-import-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

fn mapping(d: &Dir) -> RegisterMapping {
    let p = d.0.join("m.toml");
    std::fs::write(&p, MAPPING).unwrap();
    RegisterMapping::load(&p).unwrap()
}

fn export(d: &Dir, name: &str, rows: &[&str]) -> std::path::PathBuf {
    let p = d.0.join(name);
    let mut text = "房屋编号,标准地址,登记人数,经营登记,房东,二房东,网格,镇\n".to_owned();
    for r in rows {
        text += r;
        text.push('\n');
    }
    std::fs::write(&p, text).unwrap();
    p
}

type Rejects = Vec<(u64, &'static str)>;

fn run(
    reg: &mut RegisterFile,
    m: &RegisterMapping,
    since: &str,
    p: &Path,
) -> (RegisterSummary, Rejects) {
    let mut rejects = Vec::new();
    let s = merge(reg, m, since, &[p], &mut |_, line, why, _| {
        rejects.push((line, why));
        Ok(())
    })
    .unwrap();
    (s, rejects)
}

#[test]
fn a_re_registration_becomes_history_and_a_re_import_changes_nothing() {
    let d = dir("history");
    let m = mapping(&d);
    let mut reg = RegisterFile::default();
    let nov = export(
        &d,
        "nov.csv",
        &[
            "s01/b01/0301,,2,否,L-1,,c-1,城东镇",
            "s01/b01/0302,,3,是,L-2,,c-1,城东镇",
        ],
    );
    let (s, rejects) = run(&mut reg, &m, "2026-11-01", &nov);
    assert_eq!((s.rows, s.added, s.changed, s.unchanged), (2, 2, 0, 0));
    assert!(rejects.is_empty());
    // December: 0301 now holds 8 people and is sublet; 0302 as before.
    let dec = export(
        &d,
        "dec.csv",
        &[
            "s01/b01/0301,,8,否,L-1,S-9,c-1,城东镇",
            "s01/b01/0302,,3,是,L-2,,c-1,城东镇",
        ],
    );
    let (s, _) = run(&mut reg, &m, "2026-12-01", &dec);
    assert_eq!((s.added, s.changed, s.unchanged), (0, 1, 1));
    let again = run(&mut reg, &m, "2026-12-01", &dec).0;
    assert_eq!(
        (again.changed, again.corrected, again.unchanged),
        (0, 0, 2),
        "idempotent"
    );
    reg.check().unwrap();
    let r = Register::from_file(reg.clone());
    let day = |x: &str| dates::parse_date(x).unwrap();
    assert_eq!(
        r.flat_on("s01/b01/0301", day("2026-11-20"))
            .unwrap()
            .occupants,
        2
    );
    assert_eq!(
        r.flat_on("s01/b01/0301", day("2026-12-01"))
            .unwrap()
            .occupants,
        8
    );
    assert!(r.flat_on("s01/b01/0301", day("2026-10-31")).is_none());
    let h = r.history("s01/b01/0301");
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].sublandlord.as_deref(), Some("S-9"));
    assert_eq!(h[1].town.as_deref(), Some("城东镇"));
    assert!(r.flat("s01/b01/0302").unwrap().business);
    // A corrected December export replaces December's entry, not November's.
    let fix = export(&d, "fix.csv", &["s01/b01/0301,,7,否,L-1,S-9,c-1,城东镇"]);
    let (s, _) = run(&mut reg, &m, "2026-12-01", &fix);
    assert_eq!(s.corrected, 1);
    let r = Register::from_file(reg);
    assert_eq!(r.history("s01/b01/0301").len(), 2);
    assert_eq!(r.flat("s01/b01/0301").unwrap().occupants, 7);
}

#[test]
fn bad_rows_are_rejected_by_line_and_reason_and_the_rest_merge() {
    let d = dir("rejects");
    let m = mapping(&d);
    let mut reg = RegisterFile {
        meters: vec![MeterEntry {
            meter: "E-1".into(),
            flat: "s01/b02/0101".into(),
            account: None,
            address: Some("城东镇幸福路1号1幢101室".into()),
        }],
        ..Default::default()
    };
    let p = export(
        &d,
        "bad.csv",
        &[
            ",城东镇幸福路1号1幢101室,4,否,,,c-2,城东镇", // line 2: matched by address
            ",城东镇幸福路9号,4,否,,,c-2,城东镇",         // 3: unknown address
            "s01/b02/0102,,many,否,,,c-2,城东镇",         // 4: occupants
            "s01/0103,,2,否,,,c-2,城东镇",                // 5: not site/building/unit
            "s01/b02/0104,,2",                            // 6: too few columns
            "s01/b02/0101,,5,否,,,c-2,城东镇",            // 7: 0101 again
            "s01/b02/0105,,1,否,,,c-2,城东镇",            // 8: fine
        ],
    );
    let (s, rejects) = run(&mut reg, &m, "2026-12-01", &p);
    assert_eq!(s.rows, 7);
    assert_eq!(s.added, 2);
    assert_eq!(
        rejects,
        vec![
            (3, "unmatched"),
            (4, "occupants"),
            (5, "flat"),
            (6, "columns"),
            (7, "duplicate")
        ]
    );
    assert_eq!(s.rejected_total(), 5);
    let r = Register::from_file(reg);
    assert_eq!(r.flat("s01/b02/0101").unwrap().occupants, 4);
}

#[test]
fn a_mapping_without_occupants_or_a_flat_key_is_refused() {
    let d = dir("mapping");
    let p = d.0.join("m.toml");
    std::fs::write(&p, "[columns]\nflat = \"a\"\n").unwrap();
    let e = RegisterMapping::load(&p).unwrap_err().to_string();
    assert!(e.contains("occupants") && e.contains("m.toml"), "{e}");
    std::fs::write(&p, "[columns]\noccupants = 3\n").unwrap();
    let e = RegisterMapping::load(&p).unwrap_err().to_string();
    assert!(e.contains("flat or address"), "{e}");
}

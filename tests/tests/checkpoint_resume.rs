//! Checkpoints on a district: analytics stopped halfway through a district
//! (its state saved to a checkpoint file, the process gone) and resumed
//! from that file gives exactly the alerts of an uninterrupted run: none
//! doubled, none missed, the same ids.

use gridwatch_analytics::checkpoint::{self, Header, FORMAT};
use gridwatch_analytics::pipeline::Pipeline;
use gridwatch_analytics::recording::{Record, RecordReader};
use gridwatch_analytics::register::Register;
use gridwatch_analytics::AnalyticsConfig;
use gridwatch_simulators::district::{generate, Scenario};
use gridwatch_telemetry::Alert;
use gridwatch_tests::TempDir;

fn records(dir: &std::path::Path) -> Vec<Record> {
    let file = std::fs::File::open(dir.join("recording.jsonl")).expect("recording written");
    RecordReader::new(std::io::BufReader::new(file))
        .map(|r| r.expect("recording parses"))
        .collect()
}

fn feed(p: &mut Pipeline, records: &[Record]) -> Vec<Alert> {
    let mut out = Vec::new();
    for r in records {
        match r {
            Record::Reading(r) => out.extend(p.process(r)),
            Record::Event(e) => out.extend(p.process_event(e)),
        }
    }
    out
}

#[test]
fn a_district_resumed_from_a_checkpoint_gives_the_uninterrupted_alerts() {
    let dir = TempDir::new("checkpoint-district");
    let scenario = Scenario {
        name: "checkpoint".into(),
        days: 12,
        sites: 1,
        buildings_per_site: 1,
        floors: 2,
        flats_per_floor: 5,
        ..Scenario::default()
    };
    generate(&scenario, 3, dir.path()).expect("district generated");
    let all = records(dir.path());
    let register = Register::load(dir.path().join("register.json")).expect("register");
    let config = AnalyticsConfig::default();

    let mut whole = Pipeline::with_register(&config, register.clone());
    let expected = feed(&mut whole, &all);
    assert!(
        expected.len() >= 3,
        "the district must raise alerts on both sides of the stop for this test to mean anything: {}",
        expected.len()
    );

    // Stopped at several points, among them mid-way through the weeks the
    // group-rental baselines need.
    for cut in [all.len() / 2, all.len() * 4 / 5] {
        let path = dir.path().join(format!("state-{cut}.ckpt"));
        let mut first = Pipeline::with_register(&config, register.clone());
        let mut got = feed(&mut first, &all[..cut]);
        let header = Header {
            format: FORMAT,
            fingerprint: checkpoint::fingerprint(&config),
            saved_at_ms: 0,
            position: cut as u64,
        };
        checkpoint::save(&path, &header, first.state()).expect("checkpoint saved");
        drop(first);

        let back = checkpoint::load(&path, &config)
            .expect("checkpoint readable")
            .expect("checkpoint present");
        assert_eq!(back.header.position, cut as u64);
        let mut resumed = Pipeline::with_register(&config, register.clone());
        resumed.restore(back.state);
        got.extend(feed(&mut resumed, &all[back.header.position as usize..]));

        let ids = |v: &[Alert]| v.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&got),
            ids(&expected),
            "alerts differ when stopped at record {cut}"
        );
        assert_eq!(
            got, expected,
            "alert contents differ when stopped at record {cut}"
        );
        assert_eq!(resumed.stats(), whole.stats());
    }

    // And without the checkpoint, a restart at the half-way point misses
    // what needed the first half: the test can tell the difference.
    let half = all.len() / 2;
    let mut fresh = Pipeline::with_register(&config, register.clone());
    let mut naive = feed(
        &mut Pipeline::with_register(&config, register),
        &all[..half],
    );
    naive.extend(feed(&mut fresh, &all[half..]));
    assert_ne!(
        naive, expected,
        "a restart without a checkpoint should lose something"
    );
}

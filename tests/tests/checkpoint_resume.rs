//! Checkpoints on a district: analytics stopped halfway through a district
//! (its state saved to a checkpoint file, the process gone) and resumed
//! from that file gives exactly the alerts of an uninterrupted run: none
//! doubled, none missed, the same ids. And the same for a replay process
//! killed with SIGKILL mid-district and started again on its files.

use gridwatch_analytics::checkpoint::{self, Header, FORMAT};
use gridwatch_analytics::pipeline::Pipeline;
use gridwatch_analytics::recording::{Record, RecordReader};
use gridwatch_analytics::register::Register;
use gridwatch_analytics::resume::{self, ResumeFiles};
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

/// Set, in the copy of the kill test run as the process to kill, to the
/// folder holding the district and its files.
const CHILD: &str = "GRIDWATCH_TEST_RESUME_CHILD";

/// Checkpoint interval of the killed replay, in records.
const EVERY: u64 = 1_000;

fn district(dir: &std::path::Path) {
    let scenario = Scenario {
        name: "checkpoint-kill".into(),
        days: 12,
        sites: 1,
        buildings_per_site: 1,
        floors: 2,
        flats_per_floor: 5,
        ..Scenario::default()
    };
    generate(&scenario, 3, dir).expect("district generated");
}

fn files(dir: &std::path::Path, run: &str) -> ResumeFiles {
    ResumeFiles {
        checkpoint: dir.join(format!("{run}.ckpt")),
        alert_log: dir.join(format!("{run}-alerts.jsonl")),
    }
}

fn replay_from(dir: &std::path::Path, input: &std::path::Path, run: &str) -> resume::Resumed {
    let register = Register::load(dir.join("register.json")).expect("register");
    let file = std::fs::File::open(input).expect("recording opens");
    resume::replay_resumable(
        &AnalyticsConfig::default(),
        register,
        std::io::BufReader::new(file),
        &files(dir, run),
        EVERY,
    )
    .expect("replay runs")
}

/// A replay process is fed the district through a pipe up to just after an
/// alert that comes after its last checkpoint, and killed with SIGKILL
/// there (that alert already in its log). Started again on the whole
/// recording and the same files, it gives exactly the alert log of an
/// uninterrupted run: none doubled, none missed.
#[test]
fn a_replay_killed_mid_district_resumes_with_the_uninterrupted_alerts() {
    if let Some(dir) = std::env::var_os(CHILD) {
        // The process to kill: replays from the pipe until killed.
        let dir = std::path::PathBuf::from(dir);
        replay_from(&dir, &dir.join("feed.pipe"), "killed");
        return;
    }
    let dir = TempDir::new("checkpoint-kill");
    district(dir.path());
    let recording = dir.path().join("recording.jsonl");
    let text = std::fs::read_to_string(&recording).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();

    let whole = replay_from(dir.path(), &recording, "whole");
    assert_eq!(whole.resumed_at, 0);
    let expected = resume::read_alert_log(&files(dir.path(), "whole").alert_log).unwrap();
    assert_eq!(expected.len() as u64, whole.alerts);
    // The same alerts as the plain pipeline gives.
    let mut plain = Pipeline::with_register(
        &AnalyticsConfig::default(),
        Register::load(dir.path().join("register.json")).unwrap(),
    );
    let plain = feed(&mut plain, &records(dir.path()));
    assert_eq!(
        expected.iter().map(|a| &a.alert).collect::<Vec<_>>(),
        plain.iter().collect::<Vec<_>>()
    );
    // Kill just after an alert in the middle that is not on a checkpoint.
    let total = lines.len() as u64;
    let target = expected
        .iter()
        .map(|a| a.after_record)
        .find(|&n| n > total / 3 && n % EVERY != 0 && n > EVERY)
        .expect("an alert in the middle of the district, between checkpoints");

    let pipe = dir.path().join("feed.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(made.success());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_replay_killed_mid_district_resumes_with_the_uninterrupted_alerts",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .spawn()
        .expect("the replay process starts");
    // The feeder: opening blocks until the child opens the pipe to read;
    // the pipe stays open (the child waits for more, mid-district) until
    // the child is killed.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let fed: Vec<String> = lines[..target as usize]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let feeder_pipe = pipe.clone();
    let feeder = std::thread::spawn(move || {
        let mut feed = std::fs::OpenOptions::new()
            .write(true)
            .open(&feeder_pipe)
            .unwrap();
        for l in &fed {
            std::io::Write::write_all(&mut feed, l.as_bytes()).unwrap();
        }
        let _ = done_rx.recv();
    });
    let killed_log = files(dir.path(), "killed").alert_log;
    let mut there = false;
    for _ in 0..600 {
        let log = resume::read_alert_log(&killed_log).unwrap();
        if log.iter().any(|a| a.after_record == target) {
            there = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        there,
        "the replay process logged the alert after record {target} within 30 s"
    );
    done_tx.send(()).unwrap();
    feeder.join().unwrap();
    let at_kill = resume::read_alert_log(&files(dir.path(), "killed").alert_log).unwrap();
    let saved = checkpoint::load(
        &files(dir.path(), "killed").checkpoint,
        &AnalyticsConfig::default(),
    )
    .unwrap()
    .expect("a checkpoint was saved before the kill");
    assert!(
        saved.header.position < target
            && at_kill
                .iter()
                .any(|a| a.after_record > saved.header.position),
        "the kill left alerts after the checkpoint (at {}) in the log",
        saved.header.position
    );

    let resumed = replay_from(dir.path(), &recording, "killed");
    assert_eq!(resumed.resumed_at, saved.header.position);
    assert!(resumed.cut >= 1, "the alerts after the checkpoint were cut");
    let got = resume::read_alert_log(&files(dir.path(), "killed").alert_log).unwrap();
    let ids = |v: &[resume::LoggedAlert]| v.iter().map(|a| a.alert.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&got),
        ids(&expected),
        "alert ids after the kill and resume"
    );
    assert_eq!(got, expected, "alert contents after the kill and resume");
}

//! The outbox on a really full disk: a 1 MiB tmpfs the test mounts, where
//! writes fail with the kernel's own ENOSPC (no test hook).
//!
//! The file system is mounted in a new user and mount namespace
//! (`unshare -rm`, util-linux), which needs no privileges where user
//! namespaces are allowed and vanishes with the process: the test runs
//! itself again inside one. Where that is refused, it mounts the tmpfs
//! directly, which needs root, and unmounts it at the end. With neither it
//! fails, saying so.

use gridwatch_gateway::outbox::{Outbox, OutboxOptions, ReadCursor, Record};
use gridwatch_gateway::status::Health;
use gridwatch_telemetry::{DeviceKind, GatewayState, Reading, Timestamp};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set (to a marker file) in the copy of the test run inside the namespace.
const INNER: &str = "GRIDWATCH_TEST_TMPFS_MARKER";

/// Size of the test's file system.
const FS_BYTES: u64 = 1 << 20;

fn mount_tmpfs(dir: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={FS_BYTES}")])
        .arg("gridwatch-test")
        .arg(dir)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Unmounts the tmpfs mounted outside a namespace, even when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs `body` with a folder on a fresh 1 MiB tmpfs. `test` is the test's
/// own name, to run it again inside a namespace.
fn on_small_fs(test: &str, body: impl FnOnce(&Path)) {
    let root = tempfile::tempdir().unwrap();
    if let Some(marker) = std::env::var_os(INNER) {
        fs::write(&marker, b"started").unwrap();
        mount_tmpfs(root.path()).expect("mount a tmpfs inside the new namespace");
        body(root.path());
        return;
    }
    let marker = root.path().join("inner-started");
    let inner = Command::new("unshare")
        .arg("-rm")
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, &marker)
        .status();
    if marker.exists() {
        // The test ran inside the namespace: its result is the result.
        assert!(
            inner.is_ok_and(|s| s.success()),
            "the test failed inside its namespace (output above)"
        );
        return;
    }
    let dir = root.path().join("fs");
    fs::create_dir(&dir).unwrap();
    if let Err(e) = mount_tmpfs(&dir) {
        panic!(
            "this test needs a small tmpfs: `unshare -rm` (util-linux, user namespaces) \
             was refused ({inner:?}) and mounting one directly failed ({e}); run it as root \
             or where user namespaces are allowed"
        );
    }
    let _mounted = Mounted(dir.clone());
    body(&dir);
}

fn options(dir: &Path, segment_bytes: u64) -> OutboxOptions {
    OutboxOptions {
        dir: dir.join("outbox"),
        segment_bytes,
        max_bytes: 1 << 30,
        max_age_ms: None,
    }
}

/// Appends pile-1's reading `seq` and writes it, as the writer task does
/// with each batch; false when the outbox dropped it.
fn poll(o: &mut Outbox, seq: u64) -> bool {
    let mut r = Reading::new(
        Timestamp(1_764_000_000_000 + seq as i64),
        "gw-1",
        "pile-1",
        DeviceKind::ChargingSocket,
        seq,
    );
    r.values.insert("current_a".into(), 2.5);
    r.values.insert("voltage_v".into(), 229.8);
    let bytes = Record::Reading(r).to_payload().unwrap();
    let stored = o.append(&bytes, Some(("pile-1", seq)), 0).is_ok();
    let _ = o.flush();
    stored
}

/// Sends (reads) every readable record from `cursor` on, returns their seqs
/// and acknowledges them, as the uplink does.
fn deliver(o: &mut Outbox, cursor: &mut ReadCursor, seqs: &mut Vec<u64>) {
    for _ in 0..100_000 {
        let got = o.read(cursor, 500).unwrap();
        if got.is_empty() {
            break;
        }
        for e in got {
            seqs.push(Record::from_payload(&e.payload).unwrap().seq());
        }
    }
    o.acknowledge("mqtt", cursor.next_id());
}

/// Sizes of the segment files, oldest first.
fn segment_sizes(dir: &Path) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| {
            let first: u64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (first, fs::metadata(&p).unwrap().len())
        })
        .collect();
    v.sort();
    v
}

/// The uplink is down and the disk fills with undelivered readings; then
/// polling goes on for 4 MiB more. Every reading not stored is counted (in
/// the outbox's stats and the status), segments shrink as the space does,
/// what is delivered is freed first, and once the uplink returns every
/// held reading is written without a restart.
#[test]
fn a_full_disk_counts_every_reading_it_drops_and_recovers_by_itself() {
    on_small_fs(
        "a_full_disk_counts_every_reading_it_drops_and_recovers_by_itself",
        |fs_dir| {
            let opts = options(fs_dir, 256 * 1024);
            let dir = opts.dir.clone();
            let (mut o, _) = Outbox::open(opts, &["mqtt"]).unwrap();
            assert!(o.reserve_present(), "the reserve is written at open");
            let health = Health::new("gw-1".into(), "yard-a".into(), 1);
            let mut not_stored = BTreeSet::new();
            let mut seq = 0;

            // The uplink is down: the disk fills.
            while o.stats().write_failures == 0 && seq < 100_000 {
                assert!(poll(&mut o, seq), "nothing dropped before the disk is full");
                seq += 1;
                if seq % 100 == 0 {
                    let _ = o.commit();
                }
            }
            assert!(o.stats().write_failures > 0, "the 1 MiB disk filled");
            assert!(!o.reserve_present(), "the reserve is released at once");
            let sizes = segment_sizes(&dir);
            let closed: Vec<u64> = sizes[..sizes.len() - 1].iter().map(|s| s.1).collect();
            assert!(closed.len() >= 4, "segments: {sizes:?}");
            assert!(
                closed[0] < (FS_BYTES - 64 * 1024) / 4 + 1024,
                "the first segment is sized to a quarter of the space free (less the reserve), \
                 not to segment_bytes (256 KiB): {sizes:?}"
            );
            assert!(
                closed.windows(2).all(|w| w[1] <= w[0] + 512)
                    && *closed.last().unwrap() < closed[0] / 4,
                "segments shrink with the free space: {sizes:?}"
            );

            // Polling goes on: readings wait in memory, then are dropped.
            while o.stats().full_dropped < 200 && seq < 200_000 {
                if !poll(&mut o, seq) {
                    not_stored.insert(seq);
                }
                seq += 1;
            }
            let stats = o.stats();
            assert_eq!(stats.full_dropped, not_stored.len() as u64);
            assert!(stats.held > 1000, "readings wait in memory: {stats:?}");
            health.set_outbox(stats.pending, stats.dropped, stats.full_dropped);
            let status = health.status(GatewayState::Online, Timestamp(0));
            assert_eq!(status.outbox_full_dropped, not_stored.len() as u64);
            assert_eq!(status.outbox_dropped, not_stored.len() as u64);

            // The uplink delivers what is on disk: the delivered segments
            // are freed at the next commit, before anything else.
            let mut cursor = ReadCursor::at(0);
            let mut delivered = Vec::new();
            deliver(&mut o, &mut cursor, &mut delivered);
            let _ = o.commit();
            let left = segment_sizes(&dir);
            assert!(
                left.iter()
                    .skip(1)
                    .all(|&(first, _)| first >= cursor.next_id())
                    && left.len() <= 2,
                "delivered segments freed: {left:?} (uplink at {})",
                cursor.next_id()
            );

            // Space is back: the held readings go to disk and out, in
            // rounds, with no restart; then the reserve is written again.
            for _ in 0..500 {
                if o.stats().held == 0 {
                    break;
                }
                let _ = o.commit();
                deliver(&mut o, &mut cursor, &mut delivered);
            }
            o.commit().unwrap();
            deliver(&mut o, &mut cursor, &mut delivered);
            o.commit().unwrap();
            assert_eq!(o.stats().held, 0, "every held reading was written");
            assert!(o.reserve_present(), "the reserve is back");
            // More polling works as before.
            for s in seq..seq + 100 {
                assert!(poll(&mut o, s));
            }
            seq += 100;
            deliver(&mut o, &mut cursor, &mut delivered);

            // Every reading was delivered once, in order, or counted.
            assert!(
                delivered.windows(2).all(|w| w[0] < w[1]),
                "in order, none twice"
            );
            let delivered: BTreeSet<u64> = delivered.into_iter().collect();
            assert!(delivered.is_disjoint(&not_stored));
            let all: BTreeSet<u64> = delivered.union(&not_stored).copied().collect();
            assert_eq!(all, (0..seq).collect::<BTreeSet<u64>>());
        },
    );
}

/// Something else fills the disk while the uplink keeps up: the active
/// segment, all delivered, is closed and freed, so readings go on being
/// stored and none is dropped; the reserve returns with the space.
#[test]
fn a_disk_filled_by_another_file_frees_the_delivered_active_segment() {
    on_small_fs(
        "a_disk_filled_by_another_file_frees_the_delivered_active_segment",
        |fs_dir| {
            let opts = options(fs_dir, 256 * 1024);
            let (mut o, _) = Outbox::open(opts, &["mqtt"]).unwrap();
            let mut cursor = ReadCursor::at(0);
            let mut delivered = Vec::new();
            for seq in 0..100 {
                assert!(poll(&mut o, seq));
                deliver(&mut o, &mut cursor, &mut delivered);
            }
            o.commit().unwrap();
            // A log beside the outbox takes every free byte.
            let filler = fs_dir.join("big.log");
            let mut f = fs::File::create(&filler).unwrap();
            let chunk = vec![b'x'; 4096];
            let mut filled = 0u64;
            while std::io::Write::write_all(&mut f, &chunk).is_ok() && filled < 2 * FS_BYTES {
                filled += 4096;
            }
            drop(f);
            let mut seq = 100;
            for _ in 0..2000 {
                if !poll(&mut o, seq) {
                    panic!("reading {seq} dropped: {:?}", o.stats());
                }
                seq += 1;
                deliver(&mut o, &mut cursor, &mut delivered);
                if seq % 20 == 0 {
                    let _ = o.commit();
                }
            }
            let _ = o.commit();
            deliver(&mut o, &mut cursor, &mut delivered);
            let stats = o.stats();
            assert!(stats.write_failures > 0, "the disk was full: {stats:?}");
            assert_eq!(stats.full_dropped, 0);
            assert_eq!(stats.held, 0, "{stats:?}");
            assert_eq!(delivered, (0..seq).collect::<Vec<u64>>());
            assert!(!o.reserve_present(), "no room for the reserve yet");
            fs::remove_file(&filler).unwrap();
            o.commit().unwrap();
            assert!(o.reserve_present(), "the reserve is back with the space");
        },
    );
}

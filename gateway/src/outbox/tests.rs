use super::*;

fn options(dir: &Path) -> OutboxOptions {
    OutboxOptions {
        dir: dir.to_owned(),
        segment_bytes: 4096,
        max_bytes: 1 << 30,
        max_age_ms: None,
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("{{\"reading\":{i},\"pad\":\"{}\"}}", "x".repeat(100)).into_bytes()
}

/// Appends and writes `n` records, one write each (as the writer task
/// writes each batch it takes from the queue).
fn fill(o: &mut Outbox, n: u64) {
    for i in 0..n {
        o.append(&payload(i), Some(("pile-1", i)), 1_000 + i as i64)
            .unwrap();
        o.flush().unwrap();
    }
}

/// Appends real readings of `pile-1` (the outbox reads seqs back from
/// them on open) with the given seqs.
fn fill_records(o: &mut Outbox, seqs: std::ops::Range<u64>) {
    use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
    for seq in seqs {
        let r = Reading::new(
            Timestamp(1_000),
            "gw",
            "pile-1",
            DeviceKind::ElectricityMeter,
            seq,
        );
        let bytes = Record::Reading(r).to_payload().unwrap();
        o.append(&bytes, Some(("pile-1", seq)), 1_000).unwrap();
        o.flush().unwrap();
    }
}

fn read_all(o: &Outbox, from: u64) -> Vec<Entry> {
    let mut c = ReadCursor::at(from);
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let got = o.read(&mut c, 100).unwrap();
        if got.is_empty() {
            break;
        }
        out.extend(got);
    }
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| Segment::first_id_of(p).is_some())
        .collect();
    v.sort();
    v
}

#[test]
fn records_are_readable_once_written_before_the_sync_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, rec) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
    assert_eq!(rec, Recovery::default());
    for i in 0..10 {
        o.append(&payload(i), Some(("pile-1", i)), 1_000).unwrap();
    }
    assert!(
        read_all(&o, 0).is_empty(),
        "nothing readable before it is written"
    );
    o.flush().unwrap();
    assert_eq!(read_all(&o, 0).len(), 10, "readable as soon as written");
    assert_eq!(
        (o.readable(), o.durable()),
        (10, 0),
        "written, not yet synced"
    );
    o.acknowledge("mqtt", 10);
    assert_eq!(
        o.cursor("mqtt"),
        Some(10),
        "what was sent can be acknowledged"
    );
    o.commit().unwrap();
    assert_eq!(o.durable(), 10);
    assert_eq!(read_all(&o, 0).len(), 10);
    for i in 10..100 {
        o.append(&payload(i), Some(("pile-1", i)), 0).unwrap();
    }
    o.commit().unwrap();
    let all = read_all(&o, 0);
    assert_eq!(all.len(), 100);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.id, i as u64);
        assert_eq!(e.payload, payload(i as u64));
    }
    assert!(segment_files(dir.path()).len() > 1, "4 KiB segments roll");
    // A reader that starts in the middle gets the rest.
    assert_eq!(read_all(&o, 57).first().map(|e| e.id), Some(57));
}

#[test]
fn reopening_keeps_records_cursors_and_sequences() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt", "influx"]).unwrap();
        fill(&mut o, 50);
        o.commit().unwrap();
        o.acknowledge("mqtt", 30);
        o.acknowledge("influx", 10);
        o.close().unwrap();
    }
    let (o, rec) = Outbox::open(options(dir.path()), &["mqtt", "influx"]).unwrap();
    assert_eq!(rec.truncated_bytes, 0);
    assert_eq!(o.cursor("mqtt"), Some(30));
    assert_eq!(o.cursor("influx"), Some(10));
    assert_eq!(
        o.next_seq("pile-1"),
        Some(50),
        "a clean stop releases the reserved block"
    );
    assert!(rec.seq_gaps.is_empty());
    assert_eq!(o.next_id(), 50);
    assert_eq!(read_all(&o, 10).len(), 40);
    assert_eq!(o.stats().pending, 40);
}

#[test]
fn a_torn_tail_is_cut_off_on_open_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
        fill(&mut o, 10);
        o.commit().unwrap();
    }
    let last = segment_files(dir.path()).pop().unwrap();
    // Half a record at the end, as a power cut mid-write leaves it.
    let mut half = Vec::new();
    frame::encode(10, 5, &payload(10), &mut half);
    half.truncate(half.len() / 2);
    let good_len = fs::metadata(&last).unwrap().len();
    fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap()
        .write_all(&half)
        .unwrap();

    let (mut o, rec) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
    assert_eq!(rec.truncated_bytes, half.len() as u64);
    assert_eq!(fs::metadata(&last).unwrap().len(), good_len);
    assert_eq!(read_all(&o, 0).len(), 10);
    // New records follow without a gap in ids.
    o.append(b"after", None, 9).unwrap();
    o.commit().unwrap();
    let all = read_all(&o, 0);
    assert_eq!(all.len(), 11);
    assert_eq!(all[10].id, 10);
    assert_eq!(all[10].payload, b"after");
}

#[test]
fn a_flipped_bit_ends_the_segment_at_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
        fill(&mut o, 5);
        o.commit().unwrap();
    }
    let seg = segment_files(dir.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let third = 2 * frame::encoded_len(payload(0).len()) + frame::HEADER_LEN + 3;
    bytes[third] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    let (o, rec) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
    assert!(rec.truncated_bytes > 0);
    let ids: Vec<u64> = read_all(&o, 0).iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![0, 1]);
}

#[test]
fn segments_are_deleted_whole_when_every_uplink_is_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt", "influx"]).unwrap();
    fill(&mut o, 200);
    o.commit().unwrap();
    let before = segment_files(dir.path()).len();
    o.acknowledge("mqtt", 200);
    o.commit().unwrap();
    assert_eq!(
        segment_files(dir.path()).len(),
        before,
        "influx still needs them"
    );
    o.acknowledge("influx", 200);
    o.commit().unwrap();
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "only the open segment stays"
    );
    assert_eq!(o.stats().pending, 0);
}

#[test]
fn the_size_cap_drops_the_oldest_and_counts_what_was_undelivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_bytes = 64 * 1024;
    let (mut o, _) = Outbox::open(opts, &["mqtt"]).unwrap();
    fill(&mut o, 2_000); // ~300 KiB of records into a 64 KiB outbox
    o.commit().unwrap();
    let stats = o.stats();
    assert!(stats.bytes <= 64 * 1024, "{stats:?}");
    assert!(stats.dropped > 1_000, "{stats:?}");
    let kept = read_all(&o, 0);
    assert_eq!(kept.len() as u64 + stats.dropped, 2_000);
    assert_eq!(
        kept.last().map(|e| e.id),
        Some(1_999),
        "the newest are kept"
    );
    assert_eq!(o.cursor("mqtt"), kept.first().map(|e| e.id));
}

#[test]
fn the_age_cap_drops_segments_older_than_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_age_ms = Some(60_000);
    let (mut o, _) = Outbox::open(opts, &["mqtt"]).unwrap();
    for i in 0..100 {
        o.append(&payload(i), None, 0).unwrap();
        o.flush().unwrap();
    }
    o.append(b"new", None, 120_000).unwrap();
    o.commit().unwrap();
    let kept = read_all(&o, 0);
    assert!(kept.iter().all(|e| e.appended_ms >= 0));
    assert!(o.stats().dropped > 0);
    assert_eq!(
        kept.last().map(|e| e.payload.clone()),
        Some(b"new".to_vec())
    );
}

#[test]
fn acknowledging_past_the_readable_end_is_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
    fill(&mut o, 3);
    o.append(b"not yet written", None, 0).unwrap();
    o.acknowledge("mqtt", 9);
    assert_eq!(o.cursor("mqtt"), Some(3));
}

#[test]
fn an_uplink_added_later_starts_at_the_oldest_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
        fill(&mut o, 10);
        o.commit().unwrap();
    }
    let (o, _) = Outbox::open(options(dir.path()), &["mqtt", "influx"]).unwrap();
    assert_eq!(o.cursor("influx"), Some(0));
}

#[test]
fn damage_in_an_older_segment_costs_only_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
        fill(&mut o, 100);
        o.commit().unwrap();
    }
    let first = segment_files(dir.path()).remove(0);
    let per_segment = Segment::first_id_of(&segment_files(dir.path())[1]).unwrap();
    let mut bytes = fs::read(&first).unwrap();
    let at = frame::encoded_len(payload(0).len()) + frame::HEADER_LEN + 1;
    bytes[at] ^= 0x01; // the second record
    fs::write(&first, &bytes).unwrap();
    let (o, rec) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
    assert!(rec.truncated_bytes > 0);
    let ids: Vec<u64> = read_all(&o, 0).iter().map(|e| e.id).collect();
    let expected: Vec<u64> = std::iter::once(0).chain(per_segment..100).collect();
    assert_eq!(ids, expected);
}

#[test]
fn records_written_after_the_last_commit_are_kept_and_their_seqs_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.segment_bytes = 64 << 20;
    {
        let (mut o, _) = Outbox::open(opts.clone(), &["mqtt"]).unwrap();
        fill_records(&mut o, 0..10);
        o.commit().unwrap();
        // Written but never synced, as a SIGKILL leaves it (the page cache
        // keeps what was written).
        fill_records(&mut o, 10..3_000);
        o.flush().unwrap();
    }
    let (o, rec) = Outbox::open(opts, &["mqtt"]).unwrap();
    assert_eq!(rec.truncated_bytes, 0, "no stored reading is cut");
    assert_eq!(read_all(&o, 0).len(), 3_000);
    assert_eq!(o.next_id(), 3_000);
    let next = o.next_seq("pile-1").unwrap();
    assert!(next >= 3_000, "seqs go on past every stored record");
    assert_eq!(
        rec.seq_gaps,
        vec![seqs::SeqGap {
            device: "pile-1".into(),
            from: 3_000,
            to: next - 1
        }],
        "the unused rest of the reserved block is announced"
    );
}

#[test]
fn a_delivered_segment_goes_only_after_a_mark_past_it_so_its_seqs_are_never_announced() {
    use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    // A few segments, so fewer rolls (each a commit) than MARK_EVERY.
    opts.segment_bytes = 16 << 10;
    let write = |o: &mut Outbox, device: &str, seqs: std::ops::Range<u64>| {
        for seq in seqs {
            let r = Reading::new(
                Timestamp(1_000),
                "gw",
                device,
                DeviceKind::ElectricityMeter,
                seq,
            );
            let bytes = Record::Reading(r).to_payload().unwrap();
            o.append(&bytes, Some((device, seq)), 1_000).unwrap();
            o.flush().unwrap();
        }
    };
    {
        let (mut o, _) = Outbox::open(opts.clone(), &["mqtt"]).unwrap();
        // pile-1's records fill the first segments, then only pile-2 writes.
        write(&mut o, "pile-1", 0..100);
        write(&mut o, "pile-2", 0..100);
        // Fewer commits than MARK_EVERY: no mark is due by count.
        o.commit().unwrap();
        assert_eq!(
            state::load(&dir.path().join(state::COMMITTED))
                .unwrap()
                .len(),
            0
        );
        o.acknowledge("mqtt", 200);
        o.commit().unwrap();
        assert!(
            !segment_files(dir.path())
                .iter()
                .any(|p| p.ends_with("00000000000000000000.seg")),
            "delivered segments are freed"
        );
        // Killed: no close.
    }
    let (o, rec) = Outbox::open(opts, &["mqtt"]).unwrap();
    for device in ["pile-1", "pile-2"] {
        let gap = rec.seq_gaps.iter().find(|g| g.device == device).unwrap();
        assert_eq!(
            gap.from, 100,
            "{device}: no seq it used is announced as unused"
        );
        assert!(o.next_seq(device).unwrap() > 100);
    }
}

#[test]
fn a_full_disk_frees_delivered_segments_holds_records_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
    fill_records(&mut o, 0..200);
    o.commit().unwrap();
    let before = segment_files(dir.path()).len();
    assert!(before > 2);
    o.acknowledge("mqtt", 200);
    // The disk fills: a write puts 100 bytes in the file and fails.
    o.disk_full_after = Some(100);
    for seq in 200..210 {
        fill_records_lossy(&mut o, seq, &mut 0);
    }
    assert!(o.flush().is_err());
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "delivered segments are freed at once, before any commit"
    );
    assert_eq!(o.stats().held, 10);
    assert!(o.commit().is_err(), "commit reports the failure…");
    assert_eq!(o.readable(), 200, "…and nothing torn is readable");
    // Records beyond what memory holds are dropped and counted.
    let mut dropped = 0;
    let mut seq = 210;
    while o.stats().full_dropped == 0 {
        fill_records_lossy(&mut o, seq, &mut dropped);
        seq += 1;
    }
    assert_eq!(o.stats().full_dropped, dropped);
    let held = o.stats().held;
    // Space returns: everything held is written, in order, nothing torn.
    o.disk_full_after = None;
    o.commit().unwrap();
    let all = read_all(&o, 200);
    assert_eq!(all.len() as u64, held);
    assert!(all.windows(2).all(|w| w[1].id == w[0].id + 1));
    let reopened = Outbox::open(options(dir.path()), &["mqtt"]).unwrap().1;
    assert_eq!(
        reopened.truncated_bytes, 0,
        "the failed writes left no garbage"
    );
    assert_eq!(reopened.records, read_all(&o, 0).len() as u64);
}

fn fill_records_lossy(o: &mut Outbox, seq: u64, dropped: &mut u64) {
    use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
    let r = Reading::new(
        Timestamp(1_000),
        "gw",
        "pile-1",
        DeviceKind::ElectricityMeter,
        seq,
    );
    let bytes = Record::Reading(r).to_payload().unwrap();
    if o.append(&bytes, Some(("pile-1", seq)), 1_000).is_err() {
        *dropped += 1;
    }
}

//! The outbox's size and age caps: the oldest segment goes first, and the
//! records in it that some uplink had not delivered are counted and logged.

use super::Outbox;
use std::fs;
use tracing::warn;

impl Outbox {
    /// Drops the oldest segments while the outbox is over its byte cap or
    /// they are older than the age cap. The active segment is closed first
    /// if it alone is over the cap.
    pub fn enforce_cap(&mut self, now_ms: i64) {
        loop {
            let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
            let too_big = total > self.options.max_bytes;
            let too_old = self.options.max_age_ms.is_some_and(|age| {
                self.segments.len() > 1
                    && self
                        .segments
                        .front()
                        .is_some_and(|s| s.last_ms < now_ms.saturating_sub(age))
            });
            if !too_big && !too_old {
                break;
            }
            if self.segments.len() == 1 {
                if self.roll(true).is_err() {
                    break;
                }
                continue;
            }
            // Best effort: over the cap the oldest goes even if the mark
            // cannot be saved (a failing disk); its seqs may then be
            // announced as a gap after a crash, within what was dropped.
            let end = self.segments.front().map_or(0, |s| s.next_id);
            let _ = self.mark_covers(end);
            let Some(seg) = self.segments.pop_front() else {
                break;
            };
            let undelivered = seg
                .next_id
                .saturating_sub(self.min_cursor().max(seg.first_id));
            for c in self.cursors.values_mut() {
                if *c < seg.next_id {
                    *c = seg.next_id;
                }
            }
            self.stats.dropped += undelivered;
            let _ = fs::remove_file(&seg.path);
            if undelivered > 0 {
                warn!(
                    "the outbox is over its {} cap; dropped the oldest {undelivered} undelivered \
                     records (ids {}..{}); {} dropped since start",
                    if too_big { "size" } else { "age" },
                    seg.first_id,
                    seg.next_id,
                    self.stats.dropped
                );
            }
        }
        self.refresh_stats();
    }
}

//! The last readings of one flat that the signature smooths over and takes
//! its baseline from, kept small.
//!
//! Every monitored flat holds one of these, and at 1-minute readings it
//! holds about fifty samples, so it was the largest part of a flat's state
//! (16 bytes a sample as `(i64, f32)`, and a vector grown by doubling to 64
//! slots). A sample here is 8 bytes: its time as milliseconds from a base
//! (exact, rebased before it could overflow) and the power. The vector grows
//! a few slots at a time, so its room stays close to what it holds.

/// Rebase once an offset passes this (a quarter of `i32`'s range, about
/// six days): samples are kept for at most a few hours, so after a rebase
/// every kept offset fits with room to spare.
const REBASE_AFTER_MS: i64 = (i32::MAX / 4) as i64;

/// Slots added when the vector is full.
const GROW_BY: usize = 4;

/// Timed power samples, oldest first.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Recent {
    /// Epoch milliseconds that offsets count from.
    base: i64,
    samples: Vec<(i32, f32)>,
}

impl Recent {
    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// Samples kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Drops the oldest sample.
    pub fn drop_oldest(&mut self) {
        if !self.samples.is_empty() {
            self.samples.remove(0);
        }
    }

    /// Keeps the samples for which `keep(time)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(i64) -> bool) {
        let base = self.base;
        self.samples.retain(|(t, _)| keep(base + i64::from(*t)));
    }

    /// Adds a sample at `ts` (epoch ms), newer than every kept one.
    pub fn push(&mut self, ts: i64, w: f32) {
        if self.samples.is_empty() {
            self.base = ts;
        } else if ts - self.base > REBASE_AFTER_MS {
            let shift = ts - self.base;
            for (t, _) in &mut self.samples {
                // Kept samples are within hours of `ts`, so they fit.
                *t = i32::try_from(i64::from(*t) - shift).unwrap_or(i32::MIN);
            }
            self.base = ts;
        }
        if self.samples.len() == self.samples.capacity() {
            self.samples.reserve_exact(GROW_BY);
        }
        let offset = i32::try_from(ts - self.base).unwrap_or(i32::MAX);
        self.samples.push((offset, w));
    }

    /// Samples as (epoch ms, watts), oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (i64, f32)> + '_ {
        let base = self.base;
        self.samples
            .iter()
            .map(move |(t, w)| (base + i64::from(*t), *w))
    }

    /// Bytes on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.samples.capacity() * std::mem::size_of::<(i32, f32)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_survive_rebasing_exactly_and_room_stays_close_to_use() {
        let mut r = Recent::default();
        let day = 86_400_000_i64;
        let t0 = 1_768_838_400_123_i64;
        // Forty days of a sample a minute, keeping the last 50 minutes,
        // crosses several rebases.
        let mut ts = t0;
        while ts < t0 + 40 * day {
            r.retain(|t| ts - t < 50 * 60_000);
            r.push(ts, (ts % 1000) as f32);
            ts += 60_000 + 7;
        }
        let last = ts - (60_000 + 7);
        let got: Vec<(i64, f32)> = r.iter().collect();
        assert_eq!(got.len(), 50);
        for (i, (t, w)) in got.iter().enumerate() {
            let want = last - (49 - i as i64) * (60_000 + 7);
            assert_eq!(*t, want, "sample {i}");
            assert_eq!(*w, (want % 1000) as f32);
        }
        assert!(r.heap_bytes() <= (50 + GROW_BY) * 8, "{}", r.heap_bytes());
        r.drop_oldest();
        assert_eq!(r.len(), 49);
        r.clear();
        assert_eq!(r.iter().count(), 0);
    }
}

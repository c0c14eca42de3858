//! The recording as the meters' model: as simulated time passes each
//! recorded reading, its values are written into that meter's registers.

use super::*;

impl Player {
    pub(super) fn open(
        path: &Path,
        meters: HashMap<(String, String), LiveMeter>,
        counters: Arc<Counters>,
    ) -> anyhow::Result<Player> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Player {
            path: path.to_path_buf(),
            records: RecordReader::new(std::io::BufReader::with_capacity(1 << 20, file)),
            next: None,
            meters,
            counters,
        })
    }

    fn pull(&mut self) -> anyhow::Result<Option<Reading>> {
        if let Some(r) = self.next.take() {
            return Ok(Some(r));
        }
        for record in self.records.by_ref() {
            match record.with_context(|| format!("reading {}", self.path.display()))? {
                Record::Reading(r) => return Ok(Some(r)),
                // Sightings are not played (see the module docs).
                Record::Event(_) => continue,
            }
        }
        Ok(None)
    }

    /// Applies every recorded reading stamped at or before `now_ms`.
    pub(super) fn apply_until(&mut self, now_ms: i64) -> anyhow::Result<()> {
        while let Some(r) = self.pull()? {
            if r.ts.0 > now_ms {
                self.next = Some(r);
                break;
            }
            if matches!(
                r.kind,
                DeviceKind::ChargingPile | DeviceKind::ChargingSocket
            ) {
                // The yard's piles are not played live (see the module docs).
                self.counters.not_played.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let key = (r.gateway.as_str().to_owned(), r.device.as_str().to_owned());
            let Some(m) = self.meters.get(&key) else {
                bail!(
                    "{}: reading of {}/{} at {}: no such meter in register.json",
                    self.path.display(),
                    key.0,
                    key.1,
                    r.ts
                );
            };
            for (name, v) in &r.values {
                if !m.names.contains(name) {
                    bail!(
                        "{}: reading of {}/{} carries {name:?}, which its meter profile has not",
                        self.path.display(),
                        key.0,
                        key.1
                    );
                }
                m.write(name, *v).map_err(|e| {
                    anyhow::anyhow!("{}: {}/{}: {e}", self.path.display(), key.0, key.1)
                })?;
            }
            m.fresh_until
                .store(r.ts.0 + m.interval_ms * 5 / 4, Ordering::Relaxed);
            self.counters.applied.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

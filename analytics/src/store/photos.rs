//! Photos taken on site and uploaded to a case, kept in the store next to
//! the case they document (scoped like it: a photo of an alert outside the
//! caller's scope is as absent as the alert). Each upload leaves a `photo`
//! entry in the case's trail naming the photo's number, never its content.

use super::sql::vals;
use super::{Scope, Store, StoreError};
use gridwatch_telemetry::Timestamp;
use serde::{Deserialize, Serialize};

/// A stored photo's description, without its bytes (for the case's page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoInfo {
    /// The photo's number, unique across cases.
    pub id: i64,
    /// When it was uploaded.
    pub at: Timestamp,
    /// Who uploaded it.
    pub actor: String,
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub content_type: String,
    /// Its size.
    pub bytes: u64,
}

/// A stored photo's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    /// `image/jpeg`, `image/png` or `image/webp`.
    pub content_type: String,
    /// The image file as uploaded.
    pub bytes: Vec<u8>,
}

impl Store {
    /// Keeps a photo for case `id` in `scope` and notes it in the trail;
    /// returns the photo's number. The caller has checked type and size.
    pub fn add_photo(
        &self,
        scope: &Scope,
        id: i64,
        actor: &str,
        content_type: &str,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            self.get_in(tx, scope, id, false)?;
            let photo: i64 = tx
                .query_one(
                    "INSERT INTO photos (alert_id, at_ms, actor, content_type, bytes) \
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    vals![id, now.0, actor, content_type, bytes],
                )
                .and_then(|r| r.get(0))
                .map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO audit (alert_id, at_ms, actor, action, note) \
                 VALUES (?1, ?2, ?3, 'photo', ?4)",
                vals![id, now.0, actor, photo.to_string()],
            )
            .map_err(|e| self.err(e))?;
            Ok(photo)
        })
    }

    /// The photos of case `id` in `scope`, oldest first.
    pub fn photos(&self, scope: &Scope, id: i64) -> Result<Vec<PhotoInfo>, StoreError> {
        self.read(|db| {
            self.get_in(db, scope, id, false)?;
            db.query(
                "SELECT id, at_ms, actor, content_type, length(bytes) FROM photos \
                 WHERE alert_id = ?1 ORDER BY id",
                vals![id],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok(PhotoInfo {
                            id: r.get(0)?,
                            at: Timestamp(r.get(1)?),
                            actor: r.get(2)?,
                            content_type: r.get(3)?,
                            bytes: r.get::<i64>(4)?.max(0) as u64,
                        })
                    })
                    .collect()
            })
            .map_err(|e| self.err(e))
        })
    }

    /// Photo `photo` of case `id` in `scope`; `NotFound` for a photo of
    /// another case.
    pub fn photo(&self, scope: &Scope, id: i64, photo: i64) -> Result<Photo, StoreError> {
        self.read(|db| {
            self.get_in(db, scope, id, false)?;
            db.query_opt(
                "SELECT content_type, bytes FROM photos WHERE id = ?1 AND alert_id = ?2",
                vals![photo, id],
            )
            .and_then(|r| {
                r.map(|r| {
                    Ok(Photo {
                        content_type: r.get(0)?,
                        bytes: r.get(1)?,
                    })
                })
                .transpose()
            })
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::PhotoNotFound(photo))
        })
    }

    /// Adds a line to case `id`'s trail on behalf of the system (a
    /// gateway's answer to a command), whatever the case's scope: the
    /// command was checked against the person's scope when it was sent.
    pub fn note(
        &self,
        id: i64,
        at: Timestamp,
        actor: &str,
        action: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        let n = self.write(|db| {
            db.execute(
                "INSERT INTO audit (alert_id, at_ms, actor, action, note) \
                 SELECT id, ?2, ?3, ?4, ?5 FROM alerts WHERE id = ?1",
                vals![id, at.0, actor, action, note],
            )
            .map_err(|e| self.err(e))
        })?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::{Alert, AlertState, Severity};

    /// A store with one case in cell `c7`.
    fn sample_case() -> (Store, i64) {
        let store = Store::open_in_memory().unwrap();
        let alert = Alert {
            schema: 1,
            id: "socket_overcurrent:yard-a/gw/pile-1#2:1".into(),
            rule: "socket_overcurrent".into(),
            entity: "yard-a/gw/pile-1#2".into(),
            cell: "c7".into(),
            site: "yard-a".into(),
            severity: Severity::Critical,
            state: AlertState::Open,
            ts: Timestamp(1),
            title: String::new(),
            summary: String::new(),
            evidence: Default::default(),
        };
        let r = store.record(&alert, &Default::default()).unwrap();
        (store, r.id)
    }

    #[test]
    fn a_photo_is_kept_with_its_case_and_noted_in_the_trail() {
        let (store, id) = sample_case();
        let png = b"\x89PNG\r\n\x1a\nrest";
        let p = store
            .add_photo(&Scope::All, id, "wang", "image/png", png, Timestamp(5))
            .unwrap();
        let list = store.photos(&Scope::All, id).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].id, list[0].bytes), (p, png.len() as u64));
        let got = store.photo(&Scope::All, id, p).unwrap();
        assert_eq!(got.bytes, png);
        let trail = store.audit(&Scope::All, id).unwrap();
        let last = trail.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.note.as_deref()),
            ("photo", Some(p.to_string().as_str()))
        );
    }

    #[test]
    fn a_photo_outside_the_scope_or_of_another_case_is_not_found() {
        let (store, id) = sample_case();
        let p = store
            .add_photo(&Scope::All, id, "wang", "image/png", b"x", Timestamp(5))
            .unwrap();
        let elsewhere = Scope::Cells(vec!["nowhere".into()]);
        assert!(matches!(
            store.photo(&elsewhere, id, p),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.add_photo(&elsewhere, id, "x", "image/png", b"x", Timestamp(6)),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.photo(&Scope::All, id, p + 1),
            Err(StoreError::PhotoNotFound(_))
        ));
    }

    #[test]
    fn a_note_goes_to_an_existing_case_only() {
        let (store, id) = sample_case();
        store
            .note(
                id,
                Timestamp(9),
                "gw-1",
                "socket_off_ack",
                "socket 2 switched off",
            )
            .unwrap();
        let trail = store.audit(&Scope::All, id).unwrap();
        assert_eq!(trail.last().unwrap().actor, "gw-1");
        assert!(matches!(
            store.note(id + 100, Timestamp(9), "g", "a", "n"),
            Err(StoreError::NotFound(_))
        ));
    }
}

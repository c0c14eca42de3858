//! Where a worker writes the alerts it raises: an upsert by the alert's
//! deterministic id (`{rule}:{entity}:{episode start}`, see
//! [`crate::detect::Finding::id`]), so an alert raised again after a
//! takeover folds into the one already written.
//!
//! Two sinks: [`PgAlerts`], a table of the cluster's own in PostgreSQL, and
//! [`StoreSink`], the alert store ([`crate::store::Store::record`], which
//! folds a re-delivered alert into its case). A worker is given one as an
//! `Arc<dyn AlertSink>` in [`crate::cli`]'s `worker` command — the one line
//! to change when the store itself lives in PostgreSQL.

use futures::future::BoxFuture;
use gridwatch_telemetry::Alert;
use std::sync::Arc;
use tokio_postgres::Client;

/// Writes alerts idempotently: writing the same alert (same id) twice
/// leaves one.
pub trait AlertSink: Send + Sync {
    /// Writes `alert`; done when it is durable.
    fn record<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// The cluster's alert table in PostgreSQL (`gridwatch_cluster_alerts`):
/// one row per alert id; `deliveries` counts how often it was written (more
/// than once after a takeover re-read what the dead worker had done).
pub struct PgAlerts {
    client: Arc<Client>,
    worker: String,
}

impl PgAlerts {
    /// Writes through `client` (whose tables [`super::pg::migrate`] made),
    /// noting `worker` as the writer.
    pub fn new(client: Arc<Client>, worker: &str) -> Self {
        Self {
            client,
            worker: worker.to_owned(),
        }
    }
}

impl AlertSink for PgAlerts {
    fn record<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let json = serde_json::to_string(alert)?;
            self.client
                .execute(
                    "INSERT INTO gridwatch_cluster_alerts \
                       (id, rule, entity, site, cell, severity, ts_ms, alert, worker) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (id) DO UPDATE \
                       SET deliveries = gridwatch_cluster_alerts.deliveries + 1",
                    &[
                        &alert.id,
                        &alert.rule,
                        &alert.entity,
                        &alert.site,
                        &alert.cell,
                        &alert.severity.as_str(),
                        &alert.ts.0,
                        &json,
                        &self.worker,
                    ],
                )
                .await
                .map_err(|e| anyhow::anyhow!("writing alert {} to PostgreSQL: {e}", alert.id))?;
            Ok(())
        })
    }
}

/// One alert as the cluster's table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    /// The alert's id.
    pub id: String,
    /// Its rule.
    pub rule: String,
    /// The worker that wrote it first.
    pub worker: String,
    /// How many times it was written.
    pub deliveries: i32,
}

/// Every alert in the cluster's table, by id.
pub async fn stored_alerts(client: &Client) -> anyhow::Result<Vec<StoredAlert>> {
    let rows = client
        .query(
            "SELECT id, rule, worker, deliveries FROM gridwatch_cluster_alerts ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredAlert {
            id: r.get(0),
            rule: r.get(1),
            worker: r.get(2),
            deliveries: r.get(3),
        })
        .collect())
}

/// The alert store as a sink: [`crate::store::Store::record`] folds an
/// alert already recorded (same rule, entity and episode) into its case.
pub struct StoreSink {
    store: crate::store::Store,
    alerts: crate::lifecycle::AlertsConfig,
}

impl StoreSink {
    /// Records into `store` under the `[alerts]` settings.
    pub fn new(store: crate::store::Store, alerts: crate::lifecycle::AlertsConfig) -> Self {
        Self { store, alerts }
    }
}

impl AlertSink for StoreSink {
    fn record<'a>(&'a self, alert: &'a Alert) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Short and synchronous (see `Store`).
            self.store
                .record(alert, &self.alerts)
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("recording alert {}: {e}", alert.id))
        })
    }
}

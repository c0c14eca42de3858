//! PostgreSQL: the session whose advisory locks are the partitions'
//! leases, the checkpoints (detector state and the stream sequence it
//! covers, fenced by a lease epoch), and the tables they live in.
//!
//! Why advisory locks rather than a JetStream KV lease: a lock held on the
//! worker's session is released by PostgreSQL the moment the session ends
//! (the worker killed, its host gone), with no TTL to tune between "a dead
//! worker's partitions wait" and "a slow worker loses its lease", and the
//! checkpoints live in the same database, so the epoch that fences them is
//! taken in the same place as the lock.

use anyhow::Context as _;
use tokio_postgres::{Client, NoTls};

/// The first key of the partitions' advisory locks (`pg_try_advisory_lock(
/// LEASE_CLASS, partition)`); the second key is the partition.
pub const LEASE_CLASS: i32 = 0x4757_0001;

/// The first key of the workers' membership locks: every worker holds one,
/// so counting them in `pg_locks` counts the live workers.
pub const MEMBER_CLASS: i32 = 0x4757_0002;

/// Serialises the creation of the tables among workers starting together.
const SCHEMA_LOCK: i64 = 0x4757_0000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gridwatch_cluster_checkpoints (
    stream      text    NOT NULL,
    partition   integer NOT NULL,
    seq         bigint  NOT NULL DEFAULT 0,
    fingerprint bigint  NOT NULL DEFAULT 0,
    state       bytea,
    epoch       bigint  NOT NULL DEFAULT 0,
    owner       text    NOT NULL DEFAULT '',
    pending     bigint,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, partition)
);
CREATE TABLE IF NOT EXISTS gridwatch_cluster_alerts (
    id          text PRIMARY KEY,
    rule        text    NOT NULL,
    entity      text    NOT NULL,
    site        text    NOT NULL,
    cell        text    NOT NULL,
    severity    text    NOT NULL,
    ts_ms       bigint  NOT NULL,
    alert       text    NOT NULL,
    worker      text    NOT NULL,
    deliveries  integer NOT NULL DEFAULT 1,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
";

/// Connects; the connection runs on its own task, and `lost` is cancelled
/// when it ends (the session, and with it every lease, is gone).
pub async fn connect(
    url: &str,
    lost: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!("PostgreSQL session lost: {e}");
        }
        lost.cancel();
    });
    Ok(client)
}

/// The connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=…"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates the tables if needed (one worker at a time).
pub async fn migrate(client: &mut Client) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await.context("creating the cluster tables")?;
    Ok(())
}

/// Joins the workers: holds a membership lock on a free slot.
pub async fn join(client: &Client) -> anyhow::Result<i32> {
    for slot in 0..10_000 {
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&MEMBER_CLASS, &slot],
            )
            .await?
            .get(0);
        if got {
            return Ok(slot);
        }
    }
    anyhow::bail!("10000 workers already joined")
}

/// Live workers: membership locks held in this database.
pub async fn members(client: &Client) -> anyhow::Result<u32> {
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid = $1::bigint::oid AND objsubid = 2",
            &[&i64::from(MEMBER_CLASS)],
        )
        .await?
        .get(0);
    Ok(n.max(1) as u32)
}

/// Takes partition `p`'s lease if nobody holds it.
pub async fn try_lease(client: &Client, p: u32) -> anyhow::Result<bool> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&LEASE_CLASS, &(p as i32)],
        )
        .await?
        .get(0))
}

/// Gives partition `p`'s lease back.
pub async fn release(client: &Client, p: u32) -> anyhow::Result<()> {
    client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&LEASE_CLASS, &(p as i32)],
        )
        .await?;
    Ok(())
}

/// A partition's checkpoint as the new owner finds it.
#[derive(Debug, Clone)]
pub struct Taken {
    /// This ownership's epoch: checkpoints are written only while it is
    /// still the partition's (a worker that lost its lease cannot
    /// overwrite its successor's).
    pub epoch: i64,
    /// The stream sequence the state covers (0: none yet).
    pub seq: u64,
    /// The settings fingerprint the state was made under.
    pub fingerprint: u64,
    /// The encoded state, if any.
    pub state: Option<Vec<u8>>,
}

/// Records the new owner of partition `p` (bumping the epoch) and returns
/// its checkpoint. Call with the lease held.
pub async fn take(client: &Client, stream: &str, p: u32, owner: &str) -> anyhow::Result<Taken> {
    let row = client
        .query_one(
            "INSERT INTO gridwatch_cluster_checkpoints (stream, partition, epoch, owner) \
             VALUES ($1, $2, 1, $3) \
             ON CONFLICT (stream, partition) DO UPDATE \
               SET epoch = gridwatch_cluster_checkpoints.epoch + 1, owner = $3 \
             RETURNING epoch, seq, fingerprint, state",
            &[&stream, &(p as i32), &owner],
        )
        .await?;
    Ok(Taken {
        epoch: row.get(0),
        seq: row.get::<_, i64>(1) as u64,
        fingerprint: row.get::<_, i64>(2) as u64,
        state: row.get(3),
    })
}

/// Saves partition `p`'s checkpoint; `Ok(false)` when the epoch is no
/// longer this worker's (the lease was lost: stop the partition).
#[allow(clippy::too_many_arguments)]
pub async fn save(
    client: &Client,
    stream: &str,
    p: u32,
    epoch: i64,
    seq: u64,
    fingerprint: u64,
    state: &[u8],
    pending: u64,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "UPDATE gridwatch_cluster_checkpoints \
             SET seq = $4, fingerprint = $5, state = $6, pending = $7, saved_at = now() \
             WHERE stream = $1 AND partition = $2 AND epoch = $3",
            &[
                &stream,
                &(p as i32),
                &epoch,
                &(seq as i64),
                &(fingerprint as i64),
                &state,
                &(pending as i64),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Notes how far behind partition `p` is without saving state (a caught-up
/// worker's heartbeat); `Ok(false)` when the epoch is no longer ours.
pub async fn note_pending(
    client: &Client,
    stream: &str,
    p: u32,
    epoch: i64,
    pending: u64,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "UPDATE gridwatch_cluster_checkpoints SET pending = $4, saved_at = now() \
             WHERE stream = $1 AND partition = $2 AND epoch = $3",
            &[&stream, &(p as i32), &epoch, &(pending as i64)],
        )
        .await?;
    Ok(n == 1)
}

/// One partition's row, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The partition.
    pub partition: u32,
    /// The stream sequence its checkpoint covers.
    pub seq: u64,
    /// How many ownerships it has had.
    pub epoch: i64,
    /// The worker that took it last.
    pub owner: String,
    /// Messages not yet processed when last noted (none: never noted).
    pub pending: Option<u64>,
    /// Milliseconds since it was last noted, by the database's clock.
    pub age_ms: i64,
}

/// Every partition's row of `stream`, by partition.
pub async fn progress(client: &Client, stream: &str) -> anyhow::Result<Vec<Progress>> {
    let rows = client
        .query(
            "SELECT partition, seq, epoch, owner, pending, \
               (extract(epoch FROM (now() - saved_at)) * 1000)::bigint \
             FROM gridwatch_cluster_checkpoints WHERE stream = $1 ORDER BY partition",
            &[&stream],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Progress {
            partition: r.get::<_, i32>(0) as u32,
            seq: r.get::<_, i64>(1) as u64,
            epoch: r.get(2),
            owner: r.get(3),
            pending: r.get::<_, Option<i64>>(4).map(|n| n as u64),
            age_ms: r.get(5),
        })
        .collect())
}

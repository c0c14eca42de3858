//! The worker: joins the others in PostgreSQL, holds a fair share of the
//! partitions' leases (taking those nobody holds, giving back beyond its
//! share when more workers join), and runs each owned partition.

use super::partition::{self, Shared};
use super::pg;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// NATS server URL.
    pub nats: String,
    /// PostgreSQL connection string (`host=… user=… dbname=…` or a URL).
    pub postgres: String,
    /// The stream.
    pub stream: String,
    /// Partitions (the server mapping's N).
    pub partitions: u32,
    /// The worker's name.
    pub name: String,
    /// Messages between checkpoints.
    pub checkpoint_every: u64,
    /// How often ownership is reconsidered.
    pub rebalance: Duration,
}

struct Owned {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<partition::Ran>>,
}

/// Runs until `shutdown` is cancelled (each partition then saves a
/// checkpoint and its lease is given back) or the PostgreSQL session is
/// lost (an error: the leases went with it).
pub async fn run(
    options: WorkerOptions,
    make_shared: impl FnOnce(
        async_nats::jetstream::Context,
        Arc<tokio_postgres::Client>,
    ) -> anyhow::Result<Shared>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.partitions > 0 && options.partitions <= 4096,
        "--partitions must be between 1 and 4096, not {}",
        options.partitions
    );
    let lost = CancellationToken::new();
    let mut client = pg::connect(&options.postgres, lost.clone()).await?;
    pg::migrate(&mut client).await?;
    let slot = pg::join(&client).await?;
    let client = Arc::new(client);
    let nats = async_nats::connect(&options.nats)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to NATS at {}: {e}", options.nats))?;
    let js = async_nats::jetstream::new(nats);
    super::stream::ensure_stream(&js, &options.stream).await?;
    let shared = Arc::new(make_shared(js, client.clone())?);
    info!(
        "worker {} joined as member {slot}: stream {}, {} partitions",
        options.name, options.stream, options.partitions
    );
    println!("joined as member {slot}");
    let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
    let mut tick = tokio::time::interval(options.rebalance);
    let result = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            _ = lost.cancelled() => break Err(anyhow::anyhow!("the PostgreSQL session was lost; its leases with it")),
            _ = tick.tick() => {}
        }
        if let Err(e) = reap(&client, &mut owned).await {
            break Err(e);
        }
        let fair = match pg::members(&client).await {
            Ok(n) => options.partitions.div_ceil(n),
            Err(e) => break Err(e),
        };
        if owned.len() as u32 > fair {
            // More workers joined: give back the last partition, checkpointed.
            if let Some((&p, _)) = owned.iter().next_back() {
                let o = owned.remove(&p).expect("present");
                if let Err(e) = give_back(&client, p, o).await {
                    break Err(e);
                }
            }
            continue;
        }
        // Start at a different partition per member, so that workers
        // starting together do not contend for the same ones.
        let n = options.partitions;
        for i in 0..n {
            if owned.len() as u32 >= fair {
                break;
            }
            let p = (slot as u32 + i) % n;
            if owned.contains_key(&p) {
                continue;
            }
            match take(&shared, p).await {
                Ok(Some(o)) => {
                    owned.insert(p, o);
                }
                Ok(None) => {}
                Err(e) => {
                    error!("partition {p}: {e:#}");
                    let _ = pg::release(&client, p).await;
                }
            }
        }
    };
    for (p, o) in std::mem::take(&mut owned) {
        if let Err(e) = give_back(&client, p, o).await {
            warn!("partition {p}: {e:#}");
        }
    }
    result
}

async fn take(shared: &Arc<Shared>, p: u32) -> anyhow::Result<Option<Owned>> {
    if !pg::try_lease(&shared.pg, p).await? {
        return Ok(None);
    }
    let taken = pg::take(&shared.pg, &shared.stream, p, &shared.name).await?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(partition::run(shared.clone(), p, taken, stop.clone()));
    Ok(Some(Owned { stop, task }))
}

/// Stops partition `p` (it saves its checkpoint) and releases its lease.
async fn give_back(client: &tokio_postgres::Client, p: u32, o: Owned) -> anyhow::Result<()> {
    o.stop.cancel();
    match o.task.await {
        Ok(Ok(ran)) => info!("partition {p} given back: {ran:?}"),
        Ok(Err(e)) => warn!("partition {p} stopped: {e:#}"),
        Err(e) => warn!("partition {p}: its task failed: {e}"),
    }
    pg::release(client, p).await?;
    println!("released partition {p}");
    Ok(())
}

/// Releases the leases of partitions whose task ended (an error: logged;
/// the partition is free to be taken again, by this worker or another).
async fn reap(
    client: &tokio_postgres::Client,
    owned: &mut BTreeMap<u32, Owned>,
) -> anyhow::Result<()> {
    let done: Vec<u32> = owned
        .iter()
        .filter(|(_, o)| o.task.is_finished())
        .map(|(&p, _)| p)
        .collect();
    for p in done {
        let o = owned.remove(&p).expect("present");
        match o.task.await {
            Ok(Ok(ran)) => info!("partition {p} ended: {ran:?}"),
            Ok(Err(e)) => error!("partition {p} failed: {e:#}"),
            Err(e) => error!("partition {p}: its task failed: {e}"),
        }
        pg::release(client, p).await?;
    }
    Ok(())
}

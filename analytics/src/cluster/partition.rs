//! One owned partition: restore its checkpoint, re-read the stream from the
//! next sequence through a durable pull consumer, run the pipeline, write
//! alerts, acknowledge, checkpoint.
//!
//! The order per message is: the pipeline judges it, its alerts are written
//! (durably, by id), then it is acknowledged; every `checkpoint_every`
//! messages, when the partition runs dry, and when the lease is given back,
//! the state is saved with the sequence it covers. A worker killed between
//! two checkpoints has written alerts the checkpoint does not cover; its
//! successor raises them again from the same state and the same messages,
//! with the same ids, and the sink folds them.

use super::pg::{self, Taken};
use super::sink::AlertSink;
use super::stream::{partition_filter, topic_of};
use crate::checkpoint::fingerprint;
use crate::ingest::{Incoming, MessageDecoder};
use crate::pipeline::{Pipeline, PipelineState};
use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What every partition of a worker shares.
pub struct Shared {
    /// The worker's name (owner in the checkpoint table, writer of alerts).
    pub name: String,
    /// The stream.
    pub stream: String,
    /// JetStream.
    pub js: jetstream::Context,
    /// The worker's PostgreSQL session.
    pub pg: Arc<Client>,
    /// Where alerts go.
    pub sink: Arc<dyn AlertSink>,
    /// The analytics config (detectors, routing, ingest).
    pub config: crate::config::AnalyticsConfig,
    /// The register of flats and tags.
    pub register: crate::register::Register,
    /// Messages between checkpoints.
    pub checkpoint_every: u64,
    /// Pause after which a partition counts as dry.
    pub idle: Duration,
}

/// Counters of one partition's run, logged when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ran {
    /// Messages judged.
    pub messages: u64,
    /// Alerts written.
    pub alerts: u64,
    /// Messages that were not a reading or event (counted, skipped).
    pub undecodable: u64,
    /// Checkpoints saved.
    pub checkpoints: u64,
}

fn encode(state: &PipelineState) -> anyhow::Result<Vec<u8>> {
    rmp_serde::to_vec_named(state).context("encoding the pipeline state")
}

/// Runs partition `p` until `stop` is cancelled (then saves a checkpoint)
/// or the lease turns out lost. `taken` is what [`pg::take`] returned.
pub async fn run(
    shared: Arc<Shared>,
    p: u32,
    taken: Taken,
    stop: CancellationToken,
) -> anyhow::Result<Ran> {
    let s = &*shared;
    let fp = fingerprint(&s.config);
    let mut pipeline = Pipeline::with_register(&s.config, s.register.clone());
    let mut covered = 0u64;
    match &taken.state {
        Some(bytes) if taken.fingerprint == fp => {
            let state: PipelineState = rmp_serde::from_slice(bytes)
                .with_context(|| format!("partition {p}: the checkpoint is damaged"))?;
            pipeline.restore(state);
            covered = taken.seq;
        }
        Some(_) => warn!(
            "partition {p}: its checkpoint was made under other [detect] settings; \
             detection starts fresh from the start of the stream"
        ),
        None => {}
    }
    info!(
        "{}: took partition {p} (epoch {}), resuming after stream sequence {covered}",
        s.name, taken.epoch
    );
    println!("took partition {p} epoch {} at {covered}", taken.epoch);
    let stream =
        s.js.get_stream(&s.stream)
            .await
            .map_err(|e| anyhow::anyhow!("stream {}: {e}", s.stream))?;
    // The durable's acknowledgement floor runs ahead of the checkpoint (a
    // dead worker acknowledged messages whose effect died with it), so the
    // new owner re-creates it at the checkpoint's next sequence.
    let durable = format!("gridwatch-part-{p}");
    let _ = stream.delete_consumer(&durable).await;
    let deliver_policy = if covered == 0 {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::ByStartSequence {
            start_sequence: covered + 1,
        }
    };
    let mut consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: partition_filter(p),
            deliver_policy,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("consumer {durable}: {e}"))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(500)
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("consumer {durable}: {e}"))?;
    let decoder = MessageDecoder::new(&s.config.mqtt.topic_prefix);
    let mut ran = Ran::default();
    let mut saved = covered;
    let mut since_save = 0u64;
    let mut pending = 0u64;
    let mut noted = Instant::now() - Duration::from_secs(60);
    let checkpoint = |pipeline: &Pipeline, covered: u64, pending: u64| {
        let state = encode(pipeline.state());
        let pg = s.pg.clone();
        let stream = s.stream.clone();
        let epoch = taken.epoch;
        async move {
            let ours = pg::save(&pg, &stream, p, epoch, covered, fp, &state?, pending).await?;
            anyhow::ensure!(
                ours,
                "partition {p}: the lease was lost (another worker took it)"
            );
            println!("checkpoint partition {p} at {covered} pending {pending}");
            Ok::<_, anyhow::Error>(())
        }
    };
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            n = tokio::time::timeout(s.idle, messages.next()) => n,
        };
        let message = match next {
            Err(_dry) => {
                // Dry: save what is new, else say we are caught up.
                if saved != covered {
                    checkpoint(&pipeline, covered, pending).await?;
                    saved = covered;
                    since_save = 0;
                    ran.checkpoints += 1;
                    noted = Instant::now();
                } else if noted.elapsed() >= Duration::from_secs(1) {
                    // The server's count, not the last message's: messages
                    // not yet delivered and delivered but not acknowledged.
                    if let Ok(i) = consumer.info().await {
                        pending = i.num_pending + i.num_ack_pending as u64;
                    }
                    let ours = pg::note_pending(&s.pg, &s.stream, p, taken.epoch, pending).await?;
                    anyhow::ensure!(ours, "partition {p}: the lease was lost");
                    noted = Instant::now();
                }
                continue;
            }
            Ok(None) => anyhow::bail!("partition {p}: the consumer's message stream ended"),
            Ok(Some(Err(e))) => {
                warn!("partition {p}: {e}; pulling again");
                continue;
            }
            Ok(Some(Ok(m))) => m,
        };
        let info = message
            .info()
            .map_err(|e| anyhow::anyhow!("partition {p}: a message without metadata: {e}"))?;
        let seq = info.stream_sequence;
        pending = info.pending;
        if seq > covered {
            let raised = match topic_of(&message.subject)
                .ok_or_else(|| format!("subject {} is not a partition's", message.subject))
                .and_then(|(_, topic)| {
                    decoder
                        .decode_message(&topic, &message.payload)
                        .map_err(|e| e.to_string())
                }) {
                Ok(Incoming::Reading(r)) => pipeline.process(&r),
                Ok(Incoming::Event(e)) => pipeline.process_event(&e),
                Err(why) => {
                    ran.undecodable += 1;
                    if ran.undecodable <= 20 {
                        warn!("partition {p}, stream sequence {seq}: {why}; skipped");
                    }
                    Vec::new()
                }
            };
            for alert in &raised {
                s.sink.record(alert).await?;
                ran.alerts += 1;
            }
            ran.messages += 1;
            since_save += 1;
            covered = seq;
        }
        message
            .ack()
            .await
            .map_err(|e| anyhow::anyhow!("partition {p}: acknowledging {seq}: {e}"))?;
        if since_save >= s.checkpoint_every {
            checkpoint(&pipeline, covered, pending).await?;
            saved = covered;
            since_save = 0;
            ran.checkpoints += 1;
        }
    }
    if saved != covered {
        checkpoint(&pipeline, covered, pending).await?;
        ran.checkpoints += 1;
    }
    Ok(ran)
}

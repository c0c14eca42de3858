//! The JetStream side: the stream of partitioned readings and events, the
//! subjects' mapping back to MQTT topics, and feeding a recording into it.

use crate::recording::{Record, RecordReader, RecordingError};
use anyhow::Context as _;
use async_nats::jetstream::{self, stream};
use gridwatch_telemetry::codec;
use std::io::BufRead;

/// The subjects the stream keeps: every partition's.
pub const STREAM_SUBJECTS: &str = "part.>";

/// The account mappings that partition readings and events by site into
/// `partitions` partitions (what `config/nats/gridwatch.conf` holds for 8):
/// `(from, to)` pairs for a server's `mappings` block.
pub fn partition_mappings(prefix: &str, partitions: u32) -> Vec<(String, String)> {
    ["reading", "event"]
        .iter()
        .map(|kind| {
            (
                format!("{prefix}.*.*.{kind}.*"),
                format!(
                    "part.{{{{partition({partitions},1)}}}}.{prefix}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{kind}.{{{{wildcard(3)}}}}"
                ),
            )
        })
        .collect()
}

/// The subjects of partition `p`.
pub fn partition_filter(p: u32) -> String {
    format!("part.{p}.>")
}

/// The MQTT topic a partitioned subject came from:
/// `part.3.gw.s.g.reading.d` → `gw/s/g/reading/d`; `None` for a subject
/// outside the partitions.
pub fn topic_of(subject: &str) -> Option<(u32, String)> {
    let rest = subject.strip_prefix("part.")?;
    let (p, rest) = rest.split_once('.')?;
    Some((p.parse().ok()?, rest.replace('.', "/")))
}

/// The NATS subject a gateway's MQTT topic arrives as (`/` → `.`).
pub fn subject_of_topic(topic: &str) -> String {
    topic.replace('/', ".")
}

/// Creates the stream if it does not exist (file storage, limits
/// retention: acknowledged messages stay, so a worker taking a partition
/// over can re-read from its checkpoint). An existing stream is left as it
/// is.
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
) -> anyhow::Result<jetstream::stream::Stream> {
    js.get_or_create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![STREAM_SUBJECTS.to_owned()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("JetStream stream {name}: {e}"))
}

/// What feeding a recording did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fed {
    /// Messages the stream acknowledged.
    pub published: u64,
    /// Lines that could not be read (skipped, as replay skips them).
    pub malformed: u64,
    /// The stream sequence of the last message.
    pub last_seq: u64,
}

/// Connects to NATS at `url` for JetStream.
pub async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to NATS at {url}: {e}"))?;
    Ok(jetstream::new(client))
}

/// Publishes records `skip..skip+take` of a recording as its gateways would
/// (each reading or event encoded on its own topic, as a NATS subject the
/// server's mapping partitions), waiting for the stream's acknowledgement
/// of each so that none is lost and the order is the recording's.
pub async fn publish_recording(
    js: &jetstream::Context,
    prefix: &str,
    input: impl BufRead,
    skip: usize,
    take: usize,
) -> anyhow::Result<Fed> {
    publish_paced(js, prefix, input, skip, take, None).await
}

/// As [`publish_recording`], at `speed` simulated seconds per wall second
/// (the recording's event time, accelerated); as fast as the stream
/// acknowledges without one.
pub async fn publish_paced(
    js: &jetstream::Context,
    prefix: &str,
    input: impl BufRead,
    skip: usize,
    take: usize,
    speed: Option<f64>,
) -> anyhow::Result<Fed> {
    let topics = gridwatch_telemetry::topic::Topics::new(prefix);
    let mut fed = Fed::default();
    let mut acks = std::collections::VecDeque::new();
    let started = tokio::time::Instant::now();
    let mut first_ts: Option<i64> = None;
    for record in RecordReader::new(input).skip(skip).take(take) {
        let ts = match &record {
            Ok(Record::Reading(r)) => Some(r.ts.0),
            Ok(Record::Event(e)) => Some(e.ts.0),
            Err(_) => None,
        };
        if let (Some(speed), Some(ts)) = (speed.filter(|s| *s > 0.0), ts) {
            let t0 = *first_ts.get_or_insert(ts);
            let due = started
                + std::time::Duration::from_secs_f64((ts - t0).max(0) as f64 / 1000.0 / speed);
            tokio::time::sleep_until(due).await;
        }
        let (topic, payload) = match record {
            Ok(Record::Reading(r)) => (
                topics.reading(r.site.as_str(), r.gateway.as_str(), r.device.as_str()),
                codec::encode(&r)?,
            ),
            Ok(Record::Event(e)) => (
                topics.event(e.site.as_str(), e.gateway.as_str(), e.device.as_str()),
                codec::encode(&e)?,
            ),
            Err(e @ RecordingError::Io { .. }) => return Err(e.into()),
            Err(_) => {
                fed.malformed += 1;
                continue;
            }
        };
        let ack = js
            .publish(subject_of_topic(&topic), payload.into())
            .await
            .with_context(|| format!("publishing {topic}"))?;
        acks.push_back(ack);
        // A window of acknowledgements in flight: fast, and in order (one
        // connection keeps the publish order).
        if acks.len() >= 256 {
            fed.last_seq = wait(acks.pop_front()).await?.max(fed.last_seq);
            fed.published += 1;
        }
    }
    while let Some(ack) = acks.pop_front() {
        fed.last_seq = wait(Some(ack)).await?.max(fed.last_seq);
        fed.published += 1;
    }
    Ok(fed)
}

async fn wait(ack: Option<jetstream::context::PublishAckFuture>) -> anyhow::Result<u64> {
    match ack {
        Some(a) => Ok(a
            .await
            .map_err(|e| anyhow::anyhow!("the stream did not acknowledge a message: {e}"))?
            .sequence),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_back_to_topics() {
        assert_eq!(
            topic_of("part.3.gw.s-1.gw-2.reading.em-0101"),
            Some((3, "gw/s-1/gw-2/reading/em-0101".to_owned()))
        );
        assert_eq!(topic_of("gw.s.g.reading.d"), None);
        assert_eq!(topic_of("part.x.gw.s"), None);
        assert_eq!(subject_of_topic("gw/s/g/event/d"), "gw.s.g.event.d");
        let m = partition_mappings("gw", 4);
        assert_eq!(m[0].0, "gw.*.*.reading.*");
        assert_eq!(
            m[0].1,
            "part.{{partition(4,1)}}.gw.{{wildcard(1)}}.{{wildcard(2)}}.reading.{{wildcard(3)}}"
        );
    }
}

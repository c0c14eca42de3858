//! City scale: analytics partitioned over NATS JetStream, with leases,
//! checkpoints and alerts in PostgreSQL (docs/scale.md).
//!
//! Gateways publish over MQTT to nats-server's MQTT listener; the server's
//! account mapping (`config/nats/gridwatch.conf`) rewrites
//! `gw.{site}.{gateway}.reading.{device}` to
//! `part.{P}.gw.{site}.{gateway}.reading.{device}` with
//! `P = {{partition(N, site)}}`, so all of a site's data is in one
//! partition, in order. One JetStream stream ([`stream`]) keeps `part.>`.
//!
//! A worker (`gridwatch-analytics worker`, [`worker`]) holds a PostgreSQL
//! session; it owns a partition while it holds that partition's advisory
//! lock on the session, so a worker that dies (its session with it) frees
//! its partitions at once. Each owned partition runs its own [`Pipeline`]
//! (the detectors of `replay`) over a durable pull consumer with explicit
//! acks ([`partition`]), writes every alert as it is raised through an
//! [`sink::AlertSink`] (an upsert by the alert's deterministic id), and
//! checkpoints the pipeline's state with the stream sequence it covers
//! ([`pg`]). A worker taking a partition over restores that checkpoint and
//! re-reads the stream from the next sequence: the alerts raised again are
//! the same ids, folded by the upsert — none lost, none doubled.
//!
//! [`Pipeline`]: crate::pipeline::Pipeline

pub mod partition;
pub mod pg;
pub mod sink;
pub mod stream;
pub mod worker;

/// The stream's default name.
pub const DEFAULT_STREAM: &str = "GRIDWATCH";

/// Partitions in the example server config (`config/nats/gridwatch.conf`).
pub const DEFAULT_PARTITIONS: u32 = 8;

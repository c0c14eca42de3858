//! Uplinks: where readings and events leave the building.
//!
//! Devices and readers queue [`Record`]s to the outbox writer
//! ([`crate::outbox::queue`]); each uplink then reads the outbox from its own
//! cursor and acknowledges what the far side confirmed. The MQTT uplink keeps
//! its in-flight records in a pure [`mqtt::window::DeliveryWindow`].

pub mod influx;
pub mod mqtt;
pub mod rate;

// The queue and its record live with the outbox they feed; re-exported here
// because callers outside the crate named them `uplink::Record` first.
pub use crate::outbox::queue::{
    queue, PayloadError, Record, RecordSender, StoredRecord, QUEUE_CAPACITY,
};

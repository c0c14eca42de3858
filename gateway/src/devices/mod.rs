//! Devices: turning a device's answers into Readings and Events.
//!
//! Each protocol family has a module that knows how to poll one device and
//! report a [`PollOutcome`] (values, or why the device did not answer).
//! Everything after that is shared: the [`poller`] task schedules polls,
//! backs off while a device is unreachable, tracks its [`availability`] and
//! stamps the results with the gateway's identity, clock and the device's
//! sequence counter ([`DeviceStamp`]).

pub mod availability;
pub mod cjt188;
pub mod dlt645;
pub mod metronome;
pub mod modbus;
pub mod poller;
pub mod report;

use gridwatch_telemetry::{
    DeviceId, DeviceKind, Event, EventKind, GatewayId, Reading, SiteId, Timestamp, SCHEMA_VERSION,
};
use std::collections::BTreeMap;
use std::future::Future;

/// Values measured in one block of a device: the device as a whole, or one
/// socket.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// What the reading describes.
    pub kind: DeviceKind,
    /// The socket, for per-socket readings.
    pub socket: Option<u16>,
    /// Values by name, unit in the name.
    pub values: BTreeMap<String, f64>,
    /// The same values without a map, where the device decoded them so
    /// (a Modbus block): `values` is empty then. See [`modbus::flat`].
    pub flat: Option<modbus::flat::FlatValues>,
}

impl Measurement {
    /// Moves flat values into `values` (report by exception compares maps).
    pub fn into_map(mut self) -> Self {
        if let Some(flat) = self.flat.take() {
            self.values = flat.to_map();
        }
        self
    }
}

/// What one poll of a device produced.
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    /// The device answered. Some parts may have failed (a Modbus exception
    /// for one range); `errors` says which, each naming the registers.
    Answered {
        /// One per block decoded in full.
        measurements: Vec<Measurement>,
        /// Problems the device answered with, in words.
        errors: Vec<String>,
    },
    /// The device did not answer; the reason in words.
    Unreachable(String),
}

/// A device that can be polled: a protocol driver bound to its connection.
pub trait Device: Send {
    /// Polls every value once.
    fn poll(&mut self) -> impl Future<Output = PollOutcome> + Send;
    /// Where the device is (`127.0.0.1:5020 unit 1`), for log lines.
    fn address(&self) -> String;
    /// Releases the connection at shutdown.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// The identity and sequence counter every message from one device carries.
///
/// `seq` is shared by the device's readings and events, so a consumer sees
/// one series per device. The outbox reserves every device's seqs in
/// blocks before using them, so `seq` carries on across restarts and is
/// never reused; after a crash the unused rest of a block is skipped and
/// announced in the status (`seq_gaps`). A
/// device the outbox has never seen starts at the gateway's start time in
/// milliseconds × 1000 ([`Self::first_seq_at`]), so even a lost outbox never
/// makes `seq` go back and consumers that drop duplicates by `seq` keep
/// working.
#[derive(Debug, Clone)]
pub struct DeviceStamp {
    gateway: GatewayId,
    site: SiteId,
    building: Option<String>,
    unit: Option<String>,
    device: DeviceId,
    next_seq: u64,
    meter_serial: Option<String>,
}

impl DeviceStamp {
    /// Stamps for `device` of gateway `gateway` at `site`, counting from
    /// `first_seq`. The config builds these for its devices and readers
    /// ([`crate::config::GatewayConfig::device_stamp`]), so this module needs
    /// no config of its own.
    pub fn new(
        gateway: GatewayId,
        site: SiteId,
        building: Option<String>,
        unit: Option<String>,
        device: DeviceId,
        first_seq: u64,
    ) -> Self {
        Self {
            gateway,
            site,
            building,
            unit,
            device,
            next_seq: first_seq,
            meter_serial: None,
        }
    }

    /// Stamps readings with the serial number of the meter behind the
    /// device id (a CJ/T 188 meter's address), so that consumers tell a
    /// replaced meter from one running backwards.
    pub fn with_meter_serial(mut self, serial: Option<String>) -> Self {
        self.meter_serial = serial;
        self
    }

    /// The first `seq` of a gateway started at `now` (see the type's docs).
    pub fn first_seq_at(now: Timestamp) -> u64 {
        u64::try_from(now.millis())
            .unwrap_or(0)
            .saturating_mul(1000)
    }

    /// The device id.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    fn take_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// A reading of `m` taken at `ts`.
    pub fn reading(&mut self, ts: Timestamp, m: Measurement) -> Reading {
        let mut r = Reading::new(
            ts,
            self.gateway.clone(),
            self.device.clone(),
            m.kind,
            self.take_seq(),
        );
        r.site = self.site.clone();
        r.building = self.building.clone();
        r.unit = self.unit.clone();
        r.socket = m.socket;
        r.meter_serial = self.meter_serial.clone();
        r.clock_unsynced = !crate::clock_sync::trusted_now(ts);
        r.values = m.values;
        r
    }

    /// An event about the device at `ts`.
    pub fn event(&mut self, ts: Timestamp, kind: EventKind) -> Event {
        Event {
            schema: SCHEMA_VERSION,
            ts,
            gateway: self.gateway.clone(),
            site: self.site.clone(),
            device: self.device.clone(),
            seq: self.take_seq(),
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_and_events_share_one_sequence_and_carry_identity() {
        let mut stamp = DeviceStamp::new(
            "gw-1".into(),
            "yard-a".into(),
            Some("b1".into()),
            Some("lot-3".into()),
            "pile-1".into(),
            7,
        );
        let m = Measurement {
            kind: DeviceKind::ChargingSocket,
            socket: Some(3),
            values: BTreeMap::from([("current_a".to_owned(), 1.5)]),
            flat: None,
        };
        let r = stamp.reading(Timestamp(10), m);
        let e = stamp.event(Timestamp(11), EventKind::DeviceOnline);
        assert_eq!((r.seq, e.seq), (7, 8));
        assert_eq!(r.entity(), "yard-a/gw-1/pile-1#3");
        assert_eq!(r.building.as_deref(), Some("b1"));
        assert_eq!(r.unit.as_deref(), Some("lot-3"));
        assert_eq!(e.site.as_str(), "yard-a");
    }

    #[test]
    fn sequences_start_from_the_start_time() {
        assert_eq!(DeviceStamp::first_seq_at(Timestamp(1_700)), 1_700_000);
        assert_eq!(DeviceStamp::first_seq_at(Timestamp(-5)), 0);
    }
}

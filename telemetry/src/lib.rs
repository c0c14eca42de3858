//! The one data model every Gridwatch component speaks.
//!
//! The gateway turns register values, sightings and its own health into
//! [`Reading`]s, [`Event`]s and [`Status`] messages; analytics turns them into
//! [`Alert`]s. Keeping the types, the MQTT [`topic`] scheme, the versioned JSON
//! [`codec`] and the InfluxDB [`lineproto`] encoder in one small crate means a
//! field renamed here is renamed everywhere, and the wire format is defined in
//! exactly one place (documented for outside consumers in `docs/telemetry.md`).
//!
//! ```
//! use gridwatch_telemetry::{codec, DeviceKind, Reading, Timestamp};
//!
//! let mut r = Reading::new(Timestamp::from_millis(1_700_000_000_000), "gw-1", "pile-1", DeviceKind::ChargingSocket, 7);
//! r.site = "yard-a".into();
//! r.socket = Some(3);
//! r.values.insert("current_a".into(), 2.5);
//! let json = codec::encode(&r).unwrap();
//! let back: Reading = codec::decode(&json).unwrap();
//! assert_eq!(back, r);
//! ```

pub mod alert;
pub mod codec;
pub mod event;
pub mod ids;
pub mod lineproto;
pub mod reading;
pub mod register;
pub mod secret;
pub mod status;
pub mod time;
pub mod topic;

pub use alert::{Alert, AlertState, Evidence, Severity};
pub use event::{Event, EventKind};
pub use ids::{DeviceId, GatewayId, SiteId};
pub use reading::{DeviceKind, Reading};
pub use status::{ConfigState, ConfigStatus, GatewayState, SeqGap, Status};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

/// Version of the JSON payload schema. Bumped on any change a consumer could
/// notice; every payload carries it in its `schema` field so old and new
/// consumers can coexist during a rolling upgrade.
pub const SCHEMA_VERSION: u32 = 1;

//! Notification channels: where alerts go once raised, one module per
//! channel. MQTT (`alerts/{cell}/{severity}`) is the first; webhook and
//! e-mail follow the same shape.

pub mod mqtt;

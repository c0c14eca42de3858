//! Identities as newtypes, so a device id is never passed where a gateway id
//! belongs. They are plain strings on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text, for topics, tags and log lines.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

string_id!(
    /// A gateway's id: unique within the district, one per building or yard.
    GatewayId
);
string_id!(
    /// A device's id: unique within its gateway (e.g. `pile-1`, `meter-3`).
    DeviceId
);
string_id!(
    /// A site (residential compound) id: the unit property managers own.
    SiteId
);

/// Checks that an id can be used as one MQTT topic level and as a log field:
/// non-empty, at most 64 bytes, and only `A-Z a-z 0-9 - _ .`. Topic wildcards
/// (`+`, `#`) or a `/` in an id would let one device publish under another's
/// topic, so they are refused where ids enter the system (configs).
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > 64 {
        return Err(format!("is {} bytes long; the limit is 64", id.len()));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_topic_wildcards_are_refused() {
        assert!(validate_id("pile-1").is_ok());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("a+").is_err());
        assert!(validate_id("#").is_err());
        assert!(validate_id("").is_err());
        assert!(validate_id(&"x".repeat(65)).is_err());
    }
}

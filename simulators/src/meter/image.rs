//! The meter's register image: what a profile-driven device holds, by
//! table and address, independent of any transport.
//!
//! The Modbus TCP service in [`super::server`] answers from it, and an RTU
//! front end can answer from the same image unchanged. The mapped addresses
//! are exactly the reads the gateway's planner makes for the profile (gaps it
//! reads through read as 0, as on meters that allow such reads); anything
//! else is an Illegal Data Address, as on a real device.

use gridwatch_gateway::devices::modbus::plan;
use gridwatch_gateway::profile::{Function, Profile};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a request against the image is refused: each maps to a Modbus
/// exception.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageError {
    /// An address in the range is not mapped (exception 0x02).
    #[error("{function} {start}..+{count} touches unmapped address {address}")]
    IllegalDataAddress {
        /// Table.
        function: Function,
        /// First address asked for.
        start: u16,
        /// Number asked for.
        count: u16,
        /// The first unmapped one.
        address: u16,
    },
    /// The count is 0 or above the protocol's limit (exception 0x03).
    #[error("{count} is not a valid count for {function}")]
    IllegalDataValue {
        /// Table.
        function: Function,
        /// The count asked for.
        count: u16,
    },
    /// A write to a read-only table (exception 0x01).
    #[error("{function} cannot be written")]
    ReadOnly {
        /// Table.
        function: Function,
    },
}

/// Words (or 0/1 bits) by table and address, with the set of mapped ones.
#[derive(Debug, Clone, Default)]
pub struct Image {
    words: BTreeMap<(Function, u16), u16>,
}

impl Image {
    /// An image with every address the gateway would read for `profile`
    /// (with the largest channel count) and every address its commands
    /// write mapped and set to 0.
    pub fn for_profile(profile: &Profile) -> Self {
        let mut image = Self::default();
        let channels = profile.channel.as_ref().map_or(0, |c| c.max_count());
        let gap = profile.max_gap_registers;
        let reads = plan::device_requests(profile, gap)
            .into_iter()
            .chain(plan::channel_requests(profile, channels, gap));
        for r in reads {
            for a in 0..r.count {
                image.words.insert((r.function, r.start + a), 0);
            }
        }
        for c in &profile.commands {
            let sockets = match c.socket_stride {
                Some(_) => (1..=channels).map(Some).collect(),
                None => vec![None],
            };
            for s in sockets {
                image.words.insert((c.function, c.address_for(s)), 0);
            }
        }
        image
    }

    /// Stores `words` from `start` (the simulator's own updates; no checks).
    pub fn set(&mut self, function: Function, start: u16, words: &[u16]) {
        for (addr, w) in (start..=u16::MAX).zip(words) {
            self.words.insert((function, addr), *w);
        }
    }

    /// One word, if mapped.
    pub fn get(&self, function: Function, address: u16) -> Option<u16> {
        self.words.get(&(function, address)).copied()
    }

    /// A client's read: `count` words from `start`, all mapped.
    pub fn read(&self, function: Function, start: u16, count: u16) -> Result<Vec<u16>, ImageError> {
        if count == 0 || count > plan::max_read(function) {
            return Err(ImageError::IllegalDataValue { function, count });
        }
        (0..count)
            .map(|i| {
                let unmapped = ImageError::IllegalDataAddress {
                    function,
                    start,
                    count,
                    address: start.saturating_add(i),
                };
                // Past 65535 nothing is mapped.
                let address = start.checked_add(i).ok_or(unmapped.clone())?;
                self.get(function, address).ok_or(unmapped)
            })
            .collect()
    }

    /// A client's write of coils or holding registers; all-or-nothing.
    pub fn write(
        &mut self,
        function: Function,
        start: u16,
        words: &[u16],
    ) -> Result<(), ImageError> {
        if !matches!(function, Function::Coils | Function::Holding) {
            return Err(ImageError::ReadOnly { function });
        }
        let count = u16::try_from(words.len()).unwrap_or(u16::MAX);
        self.read(function, start, count)?;
        self.set(function, start, words);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_gateway::profile::ProfileLibrary;

    #[test]
    fn the_image_maps_what_the_gateway_reads_and_nothing_else() {
        let p = ProfileLibrary::built_in().get("eastron-sdm630").unwrap();
        let image = Image::for_profile(&p);
        assert_eq!(image.read(Function::Input, 0, 80).unwrap().len(), 80);
        assert_eq!(image.read(Function::Input, 0x156, 4).unwrap().len(), 4);
        assert!(matches!(
            image.read(Function::Input, 0x15A, 1),
            Err(ImageError::IllegalDataAddress { address: 0x15A, .. })
        ));
        assert!(matches!(
            image.read(Function::Holding, 0, 1),
            Err(ImageError::IllegalDataAddress { .. })
        ));
        assert!(matches!(
            image.read(Function::Input, 0, 126),
            Err(ImageError::IllegalDataValue { .. })
        ));
        assert!(matches!(
            image.read(Function::Input, u16::MAX, 2),
            Err(ImageError::IllegalDataAddress { .. })
        ));
    }

    #[test]
    fn commands_map_their_coils_and_writes_are_checked() {
        let p = ProfileLibrary::built_in().get("gridwatch-ebp12").unwrap();
        let mut image = Image::for_profile(&p);
        image.write(Function::Coils, 11, &[1]).unwrap();
        assert_eq!(image.get(Function::Coils, 11), Some(1));
        assert!(image.write(Function::Coils, 12, &[1]).is_err());
        assert_eq!(
            image.write(Function::Input, 0, &[1]),
            Err(ImageError::ReadOnly {
                function: Function::Input
            })
        );
    }
}

//! The EBP-12 vendor document (docs/devices/gridwatch-ebp12.md) and the
//! gateway's profile (config/devices/gridwatch-ebp12.toml) say what the
//! firmware's register map (the single source of truth) says.

use gridwatch_firmware::pile_map as map;
use gridwatch_gateway::profile::{ChannelCount, Function, ProfileLibrary};

const DOC: &str = include_str!("../../docs/devices/gridwatch-ebp12.md");

#[test]
fn ebp12_document_matches_the_firmware_map() {
    let p = ProfileLibrary::built_in().get("gridwatch-ebp12").unwrap();
    let addr = |name: &str| p.register(name).unwrap().address;
    assert_eq!(addr("map_version"), map::PILE_MAP_VERSION);
    assert_eq!(
        p.register("map_version").unwrap().expect,
        Some(i64::from(map::MAP_VERSION))
    );
    assert_eq!(addr("socket_count"), map::PILE_SOCKET_COUNT);
    assert_eq!(addr("total_power_w"), map::PILE_TOTAL_POWER);
    assert_eq!(addr("fault_bits"), map::PILE_FAULT_BITS);

    let ch = p.channel.as_ref().unwrap();
    assert_eq!(ch.base, map::SOCKET_BLOCK_START);
    assert_eq!(ch.stride, map::SOCKET_BLOCK_LEN);
    assert!(matches!(
        ch.count,
        ChannelCount::FromRegister { max: 12, .. }
    ));
    let off = |name: &str| {
        ch.registers
            .iter()
            .find(|r| r.name == name)
            .unwrap()
            .address
    };
    let pairs = [
        ("state", map::SOCKET_STATE),
        ("voltage_v", map::SOCKET_VOLTAGE),
        ("current_a", map::SOCKET_CURRENT),
        ("power_w", map::SOCKET_POWER),
        ("energy_wh", map::SOCKET_ENERGY),
        ("temperature_c", map::SOCKET_TEMPERATURE),
        ("relay_on", map::SOCKET_RELAY),
        ("fault_code", map::SOCKET_FAULT),
        ("session_s", map::SOCKET_SESSION_DURATION),
        ("residual_ma", map::SOCKET_RESIDUAL_CURRENT),
    ];
    for (name, offset) in pairs {
        assert_eq!(off(name), offset, "profile {name}");
        // The document's socket table has a row starting with the offset.
        assert!(
            DOC.contains(&format!("| +{offset} |")) || DOC.contains(&format!("| +{offset}–+")),
            "document row for offset +{offset} ({name})"
        );
    }
    // Scales the document states are the firmware's counts.
    let scale = |name: &str| ch.registers.iter().find(|r| r.name == name).unwrap().scale;
    assert_eq!(
        scale("voltage_v"),
        1.0 / f64::from(map::VOLTAGE_COUNTS_PER_V)
    );
    assert_eq!(
        scale("current_a"),
        1.0 / f64::from(map::CURRENT_COUNTS_PER_A)
    );
    assert!(DOC.contains("| +1 | mains voltage | u16 | 0.1 V |"));
    assert!(DOC.contains("| +2 | current | u16 | 0.001 A |"));

    // Relay coils: socket n is coil n - 1, as the commands write.
    let on = p.command("socket_on").unwrap();
    assert_eq!(on.function, Function::Coils);
    for n in 1..=12 {
        assert_eq!(Some(on.address_for(Some(n))), map::relay_coil(n));
    }
    assert_eq!(map::socket_base(3), Some(140));
    assert!(DOC.contains("`100 + (n − 1) × 20`") && DOC.contains("`2000 + (n − 1) × 10`"));
    assert_eq!(map::control_base(2), Some(2010));
}

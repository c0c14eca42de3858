use super::*;
use gridwatch_cjt188::{FlowData, HeatData, MeterTime, Unit};

const TIME: MeterTime = MeterTime {
    year: 2026,
    month: 12,
    day: 6,
    hour: 10,
    minute: 0,
    second: 0,
};

fn address() -> Address {
    Address::parse("00000000000001").unwrap()
}

fn flow(t: MeterType, current: Reading, status: Status) -> Frame {
    let data = MeterData::Flow(FlowData {
        current,
        settlement: Reading::hundredths(100, Unit::M3),
        time: TIME,
        status,
    });
    Frame::meter_data_answer(t, address(), 1, &data).unwrap()
}

fn heat(status: Status) -> Frame {
    let data = MeterData::Heat(HeatData {
        settlement_heat: Reading::hundredths(123, Unit::MWH),
        current_heat: Reading::hundredths(456_789, Unit::KWH),
        power: Reading::hundredths(250, Unit::KW),
        flow_rate: Reading {
            register: 1_234,
            decimals: 4,
            unit: Unit::M3_PER_H,
        },
        cumulative_flow: Reading::hundredths(98_765, Unit::M3),
        supply_centi_c: 5_512,
        return_centi_c: 4_003,
        working_hours: 8_760,
        time: TIME,
        status,
    });
    Frame::meter_data_answer(MeterType::HEAT, address(), 1, &data).unwrap()
}

fn close(got: f64, want: f64, name: &str) {
    assert!((got - want).abs() < 1e-9, "{name}: {got} != {want}");
}

#[test]
fn a_water_meter_in_litres_reads_in_cubic_metres() {
    let frame = flow(
        MeterType::COLD_WATER,
        Reading::hundredths(123_456, Unit::L),
        Status::new(Valve::Closed, true),
    );
    let (v, main) = meter_values(&frame, DeviceKind::WaterMeter).unwrap();
    close(v["volume_m3"], 1.23456, "volume_m3");
    close(v["settlement_volume_m3"], 1.0, "settlement");
    assert_eq!(v["valve_state"], 1.0);
    assert_eq!(v["battery_low"], 1.0);
    let ((reg, modulus), name, factor) = main.unwrap();
    close(reg, 1.23456, "register");
    // 8 digits of 0.01 L wrap at 1 000 000 L = 1000 m³.
    close(modulus, 1000.0, "modulus");
    assert_eq!((name, factor), ("flow_l", 1000.0));
    for name in v.keys() {
        assert!(WATER_VALUES.contains(&name.as_str()), "{name}");
    }
}

#[test]
fn a_gas_meter_reports_use_in_cubic_metres() {
    let frame = flow(
        MeterType::GAS,
        Reading::hundredths(99_999_999, Unit::M3),
        Status::new(Valve::Abnormal, false),
    );
    let (v, main) = meter_values(&frame, DeviceKind::GasMeter).unwrap();
    close(v["volume_m3"], 999_999.99, "volume_m3");
    assert_eq!(v["valve_state"], 2.0);
    assert_eq!(v["battery_low"], 0.0);
    let ((_, modulus), name, _) = main.unwrap();
    close(modulus, 1_000_000.0, "modulus");
    assert_eq!(name, "use_m3");
}

#[test]
fn a_heat_meter_reports_every_value_normalised() {
    let (v, main) = meter_values(
        &heat(Status::new(Valve::Open, false)),
        DeviceKind::HeatMeter,
    )
    .unwrap();
    close(v["heat_kwh"], 4567.89, "heat_kwh");
    close(v["settlement_heat_kwh"], 1230.0, "MWh to kWh");
    close(v["heat_power_kw"], 2.5, "heat_power_kw");
    close(v["flow_rate_m3_h"], 0.1234, "flow_rate_m3_h");
    close(v["volume_m3"], 987.65, "volume_m3");
    close(v["supply_temperature_c"], 55.12, "supply");
    close(v["return_temperature_c"], 40.03, "return");
    close(v["working_time_h"], 8760.0, "hours");
    assert_eq!(v["valve_state"], 0.0);
    assert_eq!(v.len(), HEAT_VALUES.len() - 1, "all but the interval value");
    assert_eq!(main.unwrap().1, "heat_use_kwh");
}

#[test]
fn unusable_answers_say_why() {
    let water_as_heat = flow(
        MeterType::COLD_WATER,
        Reading::hundredths(1, Unit::M3),
        Status::new(Valve::Open, false),
    );
    let e = meter_values(&water_as_heat, DeviceKind::HeatMeter).unwrap_err();
    assert!(e.contains("configured as heat_meter"), "{e}");
    let kwh_water = flow(
        MeterType::COLD_WATER,
        Reading::hundredths(1, Unit::KWH),
        Status::new(Valve::Open, false),
    );
    let e = meter_values(&kwh_water, DeviceKind::WaterMeter).unwrap_err();
    assert!(e.contains("current flow is in kWh (05H)"), "{e}");
    let odd = flow(
        MeterType::COLD_WATER,
        Reading::hundredths(1, Unit(0x20)),
        Status::new(Valve::Open, false),
    );
    let e = meter_values(&odd, DeviceKind::WaterMeter).unwrap_err();
    assert!(e.contains("not in the standard"), "{e}");
    let abnormal = Frame::abnormal_answer(
        MeterType::COLD_WATER,
        address(),
        gridwatch_cjt188::Function::ReadData,
        1,
        Status::new(Valve::Closed, false),
    );
    let e = meter_values(&abnormal, DeviceKind::WaterMeter).unwrap_err();
    assert_eq!(e, "the meter answered abnormally (status 01 00)");
}

#[test]
fn meter_types_map_to_reading_kinds() {
    assert_eq!(kind(MeterType::COLD_WATER), Some(DeviceKind::WaterMeter));
    assert_eq!(kind(MeterType::HOT_WATER), Some(DeviceKind::WaterMeter));
    assert_eq!(kind(MeterType::GAS), Some(DeviceKind::GasMeter));
    assert_eq!(kind(MeterType::HEAT), Some(DeviceKind::HeatMeter));
    assert_eq!(kind(MeterType::OTHER), None);
    assert_eq!(
        profile(MeterType::GAS, DeviceKind::GasMeter).model,
        "cjt188-gas"
    );
}

#[test]
fn interval_use_counts_a_configured_wrap_and_restarts_after_a_fall() {
    let modulus = modulus_of_max(99_999.999);
    let mut last = None;
    assert_eq!(interval_use(&mut last, 99_999.998, modulus), None, "first");
    close(
        interval_use(&mut last, 99_999.999, modulus).unwrap(),
        0.001,
        "just below the maximum",
    );
    close(
        interval_use(&mut last, 0.002, modulus).unwrap(),
        0.003,
        "through the wrap",
    );
    // A fall that is not a wrap: no value, and the next counts from it.
    assert_eq!(interval_use(&mut last, 0.001, modulus), None);
    close(
        interval_use(&mut last, 0.5, modulus).unwrap(),
        0.499,
        "after",
    );
}

use super::*;
use crate::toml_file::FieldError;

const HEADER: &str = r#"model = "m1"
vendor = "v"
kind = "electricity_meter"
document = "datasheet p. 3"
"#;

fn parse(body: &str) -> Result<Profile, FieldError> {
    Profile::from_toml_str(&format!("{HEADER}{body}"), "m1.toml", Some("m1"))
}

fn err(body: &str) -> FieldError {
    match parse(body) {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_ebp12_profile_has_the_names_analytics_depends_on() {
    let p = ProfileLibrary::built_in().get("gridwatch-ebp12").unwrap();
    assert_eq!(p.kind, DeviceKind::ChargingPile);
    let pile: Vec<&str> = p
        .registers
        .iter()
        .filter(|r| r.is_emitted())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(pile, ["socket_count", "total_power_w", "fault_bits"]);
    let ch = p.channel.as_ref().unwrap();
    assert_eq!(ch.kind, DeviceKind::ChargingSocket);
    assert_eq!((ch.base, ch.stride), (100, 20));
    assert_eq!(
        ch.count,
        ChannelCount::FromRegister {
            register: "socket_count".into(),
            max: 12
        }
    );
    let socket: Vec<&str> = ch.registers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        socket,
        [
            "state",
            "voltage_v",
            "current_a",
            "power_w",
            "energy_wh",
            "temperature_c",
            "relay_on",
            "fault_code",
            "session_s",
            "residual_ma"
        ]
    );
    let temp = ch
        .registers
        .iter()
        .find(|r| r.name == "temperature_c")
        .unwrap();
    assert_eq!(
        (temp.address, temp.value_type, temp.scale),
        (7, ValueType::I16, 0.1)
    );
    let state = &ch.registers[0];
    assert_eq!(state.meaning(2), Some("charging"));
    assert_eq!(p.register("map_version").unwrap().expect, Some(1));
}

#[test]
fn every_built_in_profile_is_valid() {
    let mut lib = ProfileLibrary::built_in();
    for (name, _) in BUILT_IN {
        lib.get(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn unknown_type_names_line_and_field() {
    let e = err("[[registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n[[registers]]\nname = \"b\"\naddress = 1\ntype = \"u24\"\n");
    assert_eq!(e.field, "registers[1].type");
    assert_eq!(e.location.line, 12);
    assert!(e.message.contains("unknown variant `u24`"), "{e}");
    assert!(e.message.contains("`u16`"), "lists the known types: {e}");
}

#[test]
fn overlapping_registers_are_refused() {
    let e = err(
        "[[registers]]\nname = \"power_w\"\naddress = 2\ntype = \"u32\"\n\
         [[registers]]\nname = \"fault\"\naddress = 3\ntype = \"u16\"\n",
    );
    assert_eq!(e.field, "registers[1].address");
    assert_eq!(e.location.line, 11);
    assert!(e.message.contains("overlaps \"power_w\""), "{e}");
    assert!(e.message.contains("2..=3"), "{e}");
}

#[test]
fn registers_in_different_tables_may_share_an_address() {
    let p = parse(
        "[[registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n\
         [[registers]]\nname = \"b\"\naddress = 0\ntype = \"u16\"\nfunction = \"input\"\n",
    )
    .unwrap();
    assert_eq!(p.registers[1].function, Function::Input);
}

#[test]
fn a_value_that_runs_past_its_block_is_refused() {
    let e = err(
        "[channel]\nname = \"socket\"\nkind = \"charging_socket\"\nbase = 100\nstride = 20\ncount = 2\n\
         [[channel.registers]]\nname = \"power_w\"\naddress = 19\ntype = \"u32\"\n",
    );
    assert_eq!(e.field, "channel.registers[0].address");
    assert!(e.message.contains("run past the block of 20"), "{e}");
    let e = err("[[registers]]\nname = \"a\"\naddress = 65535\ntype = \"i32\"\n");
    assert!(e.message.contains("past address 65535"), "{e}");
}

#[test]
fn empty_and_duplicate_names_are_refused() {
    let e = err("[[registers]]\nname = \"\"\naddress = 0\ntype = \"u16\"\n");
    assert_eq!(e.field, "registers[0].name");
    assert!(e.message.contains("must not be empty"));
    let e = err("[[registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n\
         [[registers]]\nname = \"a\"\naddress = 1\ntype = \"u16\"\n");
    assert_eq!(
        (e.field.as_str(), e.location.line),
        ("registers[1].name", 10)
    );
    assert!(e.message.contains("already used at line 6"), "{e}");
    let e = err("[[registers]]\nname = \"Power W\"\naddress = 0\ntype = \"u16\"\n");
    assert!(e.message.contains("lower-case"), "{e}");
}

#[test]
fn missing_fields_and_unknown_fields_are_named() {
    let e = err("[[registers]]\nname = \"a\"\naddress = 0\n");
    assert!(e.message.contains("missing field `type`"), "{e}");
    assert_eq!(e.field, "registers[0]");
    let e = err("[[registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\nscael = 0.1\n");
    assert!(e.message.contains("unknown field `scael`"), "{e}");
    assert_eq!(e.location.line, 9);
}

#[test]
fn the_model_must_match_the_file_name() {
    let text = format!("{HEADER}[[registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n");
    let e = Profile::from_toml_str(&text, "other.toml", Some("other")).unwrap_err();
    assert_eq!((e.field.as_str(), e.location.line), ("model", 1));
}

#[test]
fn channel_count_needs_a_source_and_a_maximum() {
    let e = err(
        "[channel]\nname = \"socket\"\nkind = \"charging_socket\"\nbase = 100\nstride = 20\n\
         [[channel.registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n",
    );
    assert_eq!(e.field, "channel.count");
    let e = err(
        "[channel]\nname = \"socket\"\nkind = \"charging_socket\"\nbase = 100\nstride = 20\n\
         count_register = \"n\"\nmax_count = 4\n\
         [[channel.registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n",
    );
    assert_eq!(e.field, "channel.count_register");
    assert!(
        e.message.contains("not one of the device-level registers"),
        "{e}"
    );
}

#[test]
fn device_registers_inside_the_channel_area_are_refused() {
    let e = err(
        "[[registers]]\nname = \"n\"\naddress = 120\ntype = \"u16\"\n\
         [channel]\nname = \"socket\"\nkind = \"charging_socket\"\nbase = 100\nstride = 20\ncount = 2\n\
         [[channel.registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n",
    );
    assert!(
        e.message.contains("inside the channel area 100..=139"),
        "{e}"
    );
    assert_eq!(e.location.line, 6);
}

#[test]
fn enum_meanings_need_integer_keys() {
    let e = err(
        "[[registers]]\nname = \"s\"\naddress = 0\ntype = \"u16\"\nvalues = { idle = \"x\" }\n",
    );
    assert_eq!(e.field, "registers[0].values");
    assert!(e.message.contains("not a whole number"), "{e}");
}

#[test]
fn unknown_profiles_list_the_known_ones() {
    let e = ProfileLibrary::built_in().get("nope").unwrap_err();
    assert!(e.to_string().contains("gridwatch-ebp12"), "{e}");
}

#[test]
fn the_real_meter_profiles_have_the_documented_layout() {
    let mut lib = ProfileLibrary::built_in();
    let sdm = lib.get("eastron-sdm630").unwrap();
    let total = sdm.register("total_energy_kwh").unwrap();
    assert_eq!(
        (total.function, total.address, total.value_type),
        (Function::Input, 0x156, ValueType::F32)
    );
    assert_eq!(sdm.registers.len(), 42, "SDM630: 42 values");
    let tuf = lib.get("tuf-2000m").unwrap();
    assert_eq!(
        tuf.register("flow_m3h").unwrap().word_order,
        WordOrder::LowFirst
    );
    let gas = lib.get("panametrics-gf868").unwrap();
    assert_eq!(gas.register("total_digits").unwrap().expect, Some(0));
    let pile = lib.get("gridwatch-ebp12").unwrap();
    let off = pile.command("socket_off").unwrap();
    assert_eq!(
        (off.function, off.address_for(Some(3)), off.value),
        (Function::Coils, 2, 0)
    );
}

#[test]
fn every_type_parses_with_its_register_count() {
    let p = parse(
        "[[registers]]\nname = \"e\"\naddress = 0\ntype = \"u64\"\n\
         [[registers]]\nname = \"d\"\naddress = 4\ntype = \"f64\"\n\
         [[registers]]\nname = \"b\"\naddress = 8\ntype = \"bcd32\"\ncount = 2\n\
         [[registers]]\nname = \"s\"\naddress = 10\ntype = \"string\"\ncount = 8\n\
         [[registers]]\nname = \"flag\"\naddress = 18\ntype = \"bool\"\nbit = 3\n\
         [[registers]]\nname = \"relay\"\nfunction = \"coils\"\naddress = 0\ntype = \"bool\"\n\
         [[registers]]\nname = \"door\"\nfunction = \"discrete_inputs\"\naddress = 0\ntype = \"bool\"\n",
    )
    .unwrap();
    let lens: Vec<u16> = p.registers.iter().map(Register::len).collect();
    assert_eq!(lens, [4, 4, 2, 8, 1, 1, 1]);
    assert_eq!(p.registers[3].value_type, ValueType::String { words: 8 });
    assert!(
        !p.registers[3].is_emitted(),
        "text is never a reading value"
    );
    assert_eq!(p.registers[4].bit, Some(3));
    assert_eq!(p.registers[5].function, Function::Coils);
}

#[test]
fn a_type_that_does_not_fit_its_count_is_refused() {
    let e = err("[[registers]]\nname = \"a\"\naddress = 0\ntype = \"u32\"\ncount = 1\n");
    assert_eq!(
        (e.field.as_str(), e.location.line),
        ("registers[0].count", 9)
    );
    assert!(e.message.contains("a u32 occupies 2 registers"), "{e}");
    let e = err("[[registers]]\nname = \"s\"\naddress = 0\ntype = \"string\"\n");
    assert_eq!(e.field, "registers[0].count");
    assert!(e.message.contains("a string needs `count`"), "{e}");
    let e = err("[[registers]]\nname = \"c\"\nfunction = \"coils\"\naddress = 0\ntype = \"u16\"\n");
    assert_eq!(e.field, "registers[0].type");
    assert!(e.message.contains("coils hold single bits"), "{e}");
    let e = err("[[registers]]\nname = \"f\"\naddress = 0\ntype = \"bool\"\nbit = 16\n");
    assert_eq!(e.field, "registers[0].bit");
    assert!(e.message.contains("bits 0 to 15"), "{e}");
    let e = err("[[registers]]\nname = \"f\"\naddress = 0\ntype = \"u16\"\nbit = 1\n");
    assert!(e.message.contains("needs type \"bool\""), "{e}");
}

#[test]
fn an_unknown_unit_is_refused_with_the_list() {
    let e = err("[[registers]]\nname = \"e_kwh\"\naddress = 0\ntype = \"u32\"\nunit = \"kwh\"\n");
    assert_eq!(
        (e.field.as_str(), e.location.line),
        ("registers[0].unit", 9)
    );
    assert!(e.message.contains("\"kwh\" is not a known unit"), "{e}");
    assert!(e.message.contains("kWh"), "lists the known units: {e}");
}

#[test]
fn strings_take_no_numeric_fields_and_checks_match_their_type() {
    let e = err(
        "[[registers]]\nname = \"s\"\naddress = 0\ntype = \"string\"\ncount = 2\nscale = 0.1\n",
    );
    assert_eq!(e.field, "registers[0].scale");
    assert!(e.message.contains("text, not a number"), "{e}");
    let e = err("[[registers]]\nname = \"v\"\naddress = 0\ntype = \"u16\"\nexpect_text = \"x\"\n");
    assert_eq!(e.field, "registers[0].expect_text");
    let e = err("[[registers]]\nname = \"v\"\naddress = 0\ntype = \"u16\"\ndeadband = -1.0\n");
    assert_eq!(e.field, "registers[0].deadband");
}

#[test]
fn commands_must_write_a_writable_table_with_a_fitting_value() {
    const REG: &str = "[[registers]]\nname = \"a\"\naddress = 0\ntype = \"u16\"\n";
    let e = err(&format!(
        "{REG}[[commands]]\naction = \"off\"\nfunction = \"input\"\naddress = 0\nvalue = 0\n"
    ));
    assert_eq!(e.field, "commands[0].function");
    assert!(e.message.contains("read-only"), "{e}");
    let e = err(&format!(
        "{REG}[[commands]]\naction = \"off\"\nfunction = \"coils\"\naddress = 0\nvalue = 2\n"
    ));
    assert_eq!(
        (e.field.as_str(), e.location.line),
        ("commands[0].value", 13)
    );
    let e = err(&format!(
        "{REG}[[commands]]\naction = \"off\"\nfunction = \"coils\"\naddress = 0\nsocket_stride = 1\nvalue = 0\n"
    ));
    assert!(e.message.contains("no [channel]"), "{e}");
    let e = err(&format!(
        "{REG}[[commands]]\naction = \"reset\"\nfunction = \"holding\"\naddress = 9\nvalue = 1\n\
         [[commands]]\naction = \"reset\"\nfunction = \"holding\"\naddress = 9\nvalue = 2\n"
    ));
    assert_eq!(e.field, "commands[1].action");
    assert!(e.message.contains("already defined at line 10"), "{e}");
}

#[test]
fn a_range_in_one_line_becomes_one_register_per_value() {
    let p =
        parse("registers = [{ range = \"0-99\", type = \"u16\", name = \"reg{n}\" }]\n").unwrap();
    assert_eq!(p.registers.len(), 100);
    assert_eq!(
        (p.registers[0].name.as_str(), p.registers[0].address),
        ("reg0", 0)
    );
    assert_eq!(
        (p.registers[99].name.as_str(), p.registers[99].address),
        ("reg99", 99)
    );

    // Two-register values step by two; {i} counts values from 0.
    let p = parse(
        "[[registers]]\nrange = \"0x0100-0x0107\"\ntype = \"f32\"\nname = \"power_{i}_w\"\nunit = \"W\"\n",
    )
    .unwrap();
    let got: Vec<(&str, u16)> = p
        .registers
        .iter()
        .map(|r| (r.name.as_str(), r.address))
        .collect();
    assert_eq!(
        got,
        [
            ("power_0_w", 256),
            ("power_1_w", 258),
            ("power_2_w", 260),
            ("power_3_w", 262)
        ]
    );
}

#[test]
fn a_range_is_checked_like_the_registers_it_stands_for() {
    let e = err("registers = [{ range = \"0-9\", type = \"u16\", name = \"reg\" }]\n");
    assert_eq!(e.field, "registers[0].name");
    assert!(e.message.contains("{n}"), "{}", e.message);

    let e = err("registers = [{ range = \"0-4\", type = \"u32\", name = \"r{n}\" }]\n");
    assert_eq!(e.field, "registers[0].range");
    assert!(e
        .message
        .contains("5 registers are not a whole number of 2-register values"));

    let e = err("registers = [{ range = \"ten-20\", type = \"u16\", name = \"r{n}\" }]\n");
    assert_eq!(e.field, "registers[0].range");
    assert_eq!(e.location.line, 5);

    let e = err("registers = [{ name = \"r\", type = \"u16\" }]\n");
    assert!(e.message.contains("give address"), "{}", e.message);

    let e = err(
        "registers = [{ range = \"0-9\", type = \"u16\", name = \"r{n}\" }, \
         { name = \"x\", address = 5, type = \"u16\" }]\n",
    );
    assert_eq!(e.field, "registers[1].address");
    assert!(e.message.contains("overlaps \"r5\""), "{}", e.message);
}

#[test]
fn a_generic_device_publishes_its_values_by_name() {
    let text = "model = \"unknown-box\"\nvendor = \"?\"\nkind = \"generic\"\ndocument = \"none\"\n\
                registers = [{ range = \"0-3\", type = \"u16\", name = \"reg{n}\" }]\n";
    let p = Profile::from_toml_str(text, "unknown-box.toml", Some("unknown-box")).unwrap();
    assert_eq!(p.kind, DeviceKind::Generic);
    let names: Vec<&str> = p.registers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["reg0", "reg1", "reg2", "reg3"]);
    assert!(p.registers.iter().all(|r| r.is_emitted()));
}

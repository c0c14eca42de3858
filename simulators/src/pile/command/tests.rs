use super::*;
use crate::pile::{ChargeStage, ChargerSpec, PileConfig, PileModel};

fn one_pile() -> (Piles, SharedPile) {
    let mut model = PileModel::new(PileConfig {
        sockets: 4,
        ..PileConfig::default()
    })
    .unwrap();
    model.plug_in(2, ChargerKind::Lithium).unwrap();
    let shared = SharedPile::new(model);
    (Piles::new([(1, shared.clone())].into()), shared)
}

#[test]
fn the_flag_form_and_the_typed_form_parse_alike() {
    let flag = parse("fault overcurrent,socket=2,at=30s,for=60s").unwrap();
    let typed = parse("fault overcurrent socket=2 at=30s for=1m").unwrap();
    assert_eq!(flag, typed);
    assert_eq!(
        flag,
        Command::Fault {
            unit: None,
            socket: 2,
            fault: Fault::Overcurrent,
            at: Duration::from_secs(30),
            lasting: Some(Duration::from_secs(60)),
        }
    );
    assert_eq!(
        parse("clear all socket=3 unit=2").unwrap(),
        Command::Clear {
            unit: Some(2),
            socket: 3,
            fault: None
        }
    );
}

#[test]
fn mistakes_are_named_with_what_would_be_right() {
    let e = parse("fault overcurent socket=2").unwrap_err();
    assert!(e.contains("did you mean \"overcurrent\""), "{e}");
    let e = parse("faul overcurrent socket=2").unwrap_err();
    assert!(e.contains("did you mean \"fault\""), "{e}");
    let e = parse("fault overcurrent").unwrap_err();
    assert!(e.contains("needs socket=N"), "{e}");
    let e = parse("fault overcurrent socket=2 sockt=3").unwrap_err();
    assert!(e.contains("did you mean \"socket\""), "{e}");
    let e = parse("fault overcurrent socket=2 for=ever").unwrap_err();
    assert!(e.contains("for=ever"), "{e}");
    let e = parse("plug socket=1 charger=lithum").unwrap_err();
    assert!(e.contains("did you mean \"lithium\""), "{e}");
    let (piles, _) = one_pile();
    let e = piles.command("fault overcurrent socket=9").unwrap_err();
    assert!(e.contains("socket 9 does not exist"), "{e}");
    let e = piles
        .command("fault overcurrent socket=2 unit=3")
        .unwrap_err();
    assert!(e.contains("no pile is unit 3"), "{e}");
}

#[test]
fn every_fault_goes_in_at_its_time_and_out_after_its_duration() {
    let (piles, pile) = one_pile();
    for (name, fault) in FAULT_NAMES.iter().zip([
        Fault::Overcurrent,
        Fault::OverTemperature,
        Fault::ChargingPastFull,
        Fault::ResidualCurrent,
    ]) {
        piles
            .command(&format!("fault {name} socket=2 at=30s for=60s"))
            .unwrap();
        pile.with(|p| p.step(29_000));
        assert!(piles.due().is_empty(), "{name} is not due yet");
        assert!(pile.with(|p| p.faults(2)).unwrap().is_empty());
        pile.with(|p| p.step(1_000));
        assert_eq!(piles.due().len(), 1, "{name} goes in at 30 s");
        assert_eq!(pile.with(|p| p.faults(2)).unwrap(), vec![fault]);
        pile.with(|p| p.step(59_000));
        assert!(piles.due().is_empty());
        pile.with(|p| p.step(1_000));
        assert_eq!(piles.due().len(), 1, "{name} ends 60 s later");
        assert!(pile.with(|p| p.faults(2)).unwrap().is_empty());
    }
}

#[test]
fn clearing_by_hand_cancels_the_timed_parts() {
    let (piles, pile) = one_pile();
    piles
        .command("fault residual_current socket=2 at=10s for=10s")
        .unwrap();
    piles.command("fault overcurrent socket=2").unwrap();
    assert_eq!(
        pile.with(|p| p.faults(2)).unwrap(),
        vec![Fault::Overcurrent]
    );
    piles.command("clear all socket=2").unwrap();
    pile.with(|p| p.step(60_000));
    assert!(piles.due().is_empty());
    assert!(pile.with(|p| p.faults(2)).unwrap().is_empty());
    let status = piles.command("status").unwrap();
    assert!(status.contains("#2 Lithium"), "{status}");
}

#[test]
fn overcurrent_shows_in_the_registers_and_goes_when_cleared() {
    let (piles, pile) = one_pile();
    pile.with(|p| p.step(60_000));
    piles.command("fault overcurrent socket=2").unwrap();
    pile.with(|p| p.step(5_000));
    assert!(pile.with(|p| p.socket(2)).unwrap().current_a > 5.5);
    piles.command("clear overcurrent socket=2").unwrap();
    pile.with(|p| p.step(5_000));
    assert!(pile.with(|p| p.socket(2)).unwrap().current_a < 2.0);
}

#[test]
fn every_charger_can_be_plugged_in_and_charges() {
    for name in CHARGER_NAMES {
        let (piles, pile) = one_pile();
        let said = piles
            .command(&format!("plug socket=3 charger={name}"))
            .unwrap();
        assert!(said.contains("plugged in"), "{said}");
        pile.with(|p| p.step(10 * 60_000));
        let s = pile.with(|p| p.socket(3)).unwrap();
        assert!(s.power_w > 100.0, "{name}: {} W", s.power_w);
    }
}

/// Runs one charger at 10 s steps for up to a day; returns the mains power
/// at every step and the stage it ended in.
fn curve(kind: ChargerKind) -> (Vec<f64>, ChargeStage) {
    let mut c = crate::pile::Charger::new(ChargerSpec::typical(kind));
    let mut powers = Vec::new();
    for _ in 0..24 * 360 {
        powers.push(c.mains_power_w());
        if c.stage() == ChargeStage::Done {
            break;
        }
        c.advance(10.0);
    }
    (powers, c.stage())
}

#[test]
fn the_chargers_draw_their_own_curves() {
    let (lithium, done) = curve(ChargerKind::Lithium);
    assert_eq!(done, ChargeStage::Done);
    let plateau = lithium[0];
    // Time from ¾ to ¼ of the plateau, in 10 s steps.
    let fall = |p: &[f64]| {
        let start = p.iter().position(|w| *w < 0.75 * plateau).unwrap();
        let end = p.iter().position(|w| *w < 0.25 * plateau).unwrap();
        (end - start) as f64 * 10.0 / 60.0
    };
    let (sharp, _) = curve(ChargerKind::LithiumSharp);
    assert!(fall(&sharp) < 10.0, "sharp tail {} min", fall(&sharp));
    assert!(fall(&lithium) > 20.0, "usual tail {} min", fall(&lithium));

    let (fast, _) = curve(ChargerKind::Fast);
    assert!((400.0..600.0).contains(&fast[0]), "fast {} W", fast[0]);
    let (two, _) = curve(ChargerKind::TwoPacks);
    assert!(two[0] > 1.7 * plateau, "two packs {} W", two[0]);

    let (never, stage) = curve(ChargerKind::NeverStops);
    assert_eq!(stage, ChargeStage::Taper, "never stops");
    let last = *never.last().unwrap();
    assert!((30.0..50.0).contains(&last), "levels off at {last} W");
}

#[test]
fn an_overheating_charger_heats_its_socket() {
    let (piles, pile) = one_pile();
    piles.command("plug socket=3 charger=overheating").unwrap();
    pile.with(|p| p.step(20 * 60_000));
    let hot = pile.with(|p| p.socket(3)).unwrap().temperature_c;
    let usual = pile.with(|p| p.socket(2)).unwrap().temperature_c;
    assert!(hot > 65.0 && hot > usual + 20.0, "{hot} °C vs {usual} °C");
}

#[test]
fn a_hung_firmware_keeps_its_registers_until_it_resumes() {
    let (piles, pile) = one_pile();
    pile.with(|p| p.step(60_000));
    let before = pile.with(|p| p.socket(2)).unwrap();
    assert!(piles.command("hang").unwrap().contains("registers stuck"));
    piles.command("fault overcurrent socket=2").unwrap();
    pile.with(|p| p.step(10 * 60_000));
    let stuck = pile.with(|p| p.socket(2)).unwrap();
    assert_eq!(stuck.session_s, before.session_s);
    assert_eq!(stuck.current_a, before.current_a);
    assert!(piles.command("status").unwrap().contains("(firmware hung)"));
    piles.command("resume").unwrap();
    pile.with(|p| p.step(1_000));
    let after = pile.with(|p| p.socket(2)).unwrap();
    assert!(after.session_s > before.session_s + 600, "{after:?}");
    assert!(after.current_a > 5.5, "the fault shows once it runs again");
}

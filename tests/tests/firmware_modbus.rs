//! A Modbus client nobody here wrote (pymodbus) reads and commands the
//! simulated pile, which runs the firmware's controller and answers through
//! the firmware's slave code, over real loopback TCP.
//!
//! pymodbus is pinned and installed by `scripts/test`; without it this test
//! fails and says how to install it.

use std::time::Duration;

use gridwatch_simulators::pile::{
    serve, ChargerKind, Fault, PileConfig, PileModel, Protection, SharedPile,
};
use gridwatch_simulators::pile::{ChargerSpec, SocketError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Every check runs in Python against the live server; any failed assert
/// exits non-zero with the message on stderr.
const CLIENT: &str = r#"
import sys
from pymodbus.client import ModbusTcpClient

port = int(sys.argv[1])
c = ModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
assert c.connect(), "cannot connect"

def regs(addr, n):
    r = c.read_holding_registers(addr, count=n, slave=1)
    assert not r.isError(), f"read {addr}+{n}: {r}"
    return r.registers

def exception(r):
    assert r.isError(), f"expected an exception, got {r}"
    return r.exception_code

# Pile block: map version 1, 4 sockets.
head = regs(0, 5)
assert head[0] == 1 and head[1] == 4, head
# Socket 1 (registers 100..): charging (2), relay on, current in mA > 0.
s1 = regs(100, 13)
assert s1[0] == 2 and s1[8] == 1 and s1[2] > 0, s1
# Socket 3 was cut off by the firmware's residual-current trip: state 5, fault 4.
s3 = regs(140, 13)
assert s3[0] == 5 and s3[9] == 4 and s3[8] == 0, s3
# Unmapped gap: Illegal Data Address.
assert exception(c.read_holding_registers(50, count=1, slave=1)) == 2

# Stop socket 1 with a command (control block 2000, command 2).
assert not c.write_register(2000, 2, slave=1).isError()
s1 = regs(100, 13)
assert s1[0] == 4 and s1[8] == 0 and s1[3] == 0 and s1[4] == 0, s1

# Limits of socket 1: defaults 5.5 A, 1200 W, 12 h; an out-of-range value is
# refused (Illegal Data Value) and changes nothing; a valid set is written.
assert regs(2001, 3) == [5500, 1200, 720], regs(2001, 3)
assert exception(c.write_register(2001, 50, slave=1)) == 3
assert exception(c.write_registers(2001, [3000, 5], slave=1)) == 3
assert regs(2001, 3) == [5500, 1200, 720]
assert not c.write_registers(2001, [3000, 600, 240], slave=1).isError()
assert regs(2001, 3) == [3000, 600, 240]

# Start socket 1 again through its relay coil; coils show relays 1 and 2 on.
assert not c.write_coil(0, True, slave=1).isError()
assert c.read_coils(0, count=4, slave=1).bits[:4] == [True, True, False, False]
# Socket 3's fault is latched: a start is refused (Server Device Failure).
assert exception(c.write_coil(2, True, slave=1)) == 4
# With its relay open the leak stops, so a reset is accepted; the next start
# closes the relay, the leak returns and the firmware trips again at once.
assert not c.write_register(2020, 3, slave=1).isError()
assert regs(140, 1) == [1], regs(140, 1)  # plugged, never charged
assert not c.write_coil(2, True, slave=1).isError()
s3 = regs(140, 13)
assert s3[0] == 5 and s3[9] == 4 and s3[8] == 0, s3
assert exception(c.write_coil(2, True, slave=1)) == 4
# Not a command: Illegal Data Value; reserved control register: Illegal Data Address.
assert exception(c.write_register(2000, 9, slave=1)) == 3
assert exception(c.write_register(2005, 1, slave=1)) == 2
c.close()
print("pymodbus checks passed")
"#;

#[tokio::test]
async fn pymodbus_reads_and_commands_the_simulated_firmware() {
    let mut model = PileModel::new(PileConfig {
        sockets: 4,
        protection: Protection::Protected,
        ..PileConfig::default()
    })
    .expect("valid config");
    model
        .plug_in_with(1, ChargerSpec::typical(ChargerKind::Lithium))
        .expect("free socket");
    model
        .plug_in(2, ChargerKind::LeadAcid)
        .expect("free socket");
    model.plug_in(3, ChargerKind::Lithium).expect("free socket");
    model.inject(3, Fault::ResidualCurrent).expect("socket 3");
    model.step(10 * 60_000);
    let pile = SharedPile::new(model);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let port = listener.local_addr().expect("bound").port();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, pile.clone(), 1, shutdown.clone()));

    let out = gridwatch_tests::run_pymodbus_client(CLIENT, &[port.to_string()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pymodbus checks failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // What the client did is what the firmware now holds.
    pile.with(|p| {
        let limits = p.protections(1).expect("socket 1");
        assert_eq!(limits.overcurrent_a, Some(3.0));
        assert_eq!(limits.overpower_w, Some(600.0));
        assert_eq!(limits.max_charging_ms, Some(240 * 60_000));
        assert!(p.relay(1).expect("socket 1"));
        assert!(matches!(
            p.set_relay(3, true),
            Err(SocketError::Refused { socket: 3, .. })
        ));
    });

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops when cancelled")
        .expect("server task did not panic")
        .expect("server ends cleanly");
}

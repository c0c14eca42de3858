//! How close the gateway's RTU bus gets to the wire's limit.
//!
//! A simulated pile answers on a pseudo-terminal no faster than the baud
//! rate allows (request, 3.5-character silence, response); the gateway's
//! bus task reads one socket block (13 registers: an 8-byte request and a
//! 31-byte response) back to back for a few seconds. Utilisation is the
//! achieved request rate over the theoretical one, 1 / (request + silence
//! + response + silence).
//!
//! ```sh
//! cargo run --release -p gridwatch-simulators --example rtu_utilisation
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gridwatch_gateway::bus::modbus_rtu::{self, LineTiming};
use gridwatch_gateway::bus::{ReadRequest, RegisterReader};
use gridwatch_gateway::config::SerialBusConfig;
use gridwatch_gateway::profile::Function;
use gridwatch_simulators::pile::{ChargerKind, PileConfig, PileModel, PileService, SharedPile};
use gridwatch_simulators::rtu::{self, LineControl, PtyLine};
use tokio_util::sync::CancellationToken;

const REQUEST: ReadRequest = ReadRequest {
    function: Function::Holding,
    start: 100,
    count: 13,
};

async fn measure(baud: u32, units: &[u8], run: Duration) -> anyhow::Result<()> {
    let line = PtyLine::open()?;
    let path = line.path().to_owned();
    let peer = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let mut services = BTreeMap::new();
    for &unit in units {
        let mut model = PileModel::new(PileConfig {
            sockets: 4,
            unit_id: unit,
            ..PileConfig::default()
        })?;
        model.plug_in(1, ChargerKind::Lithium)?;
        services.insert(unit, PileService::new(SharedPile::new(model), unit, peer));
    }
    let stop = CancellationToken::new();
    let control = LineControl::default();
    tokio::spawn(rtu::serve(
        line,
        baud,
        services,
        control.clone(),
        stop.clone(),
    ));
    let bus_config = SerialBusConfig {
        baud,
        ..SerialBusConfig::new("bench", &path)
    };
    let bus = modbus_rtu::spawn(&bus_config, stop.clone());

    // One poller per unit, each reading back to back, as many devices do.
    let deadline = Instant::now() + run;
    let mut tasks = Vec::new();
    for &unit in units {
        let mut client = bus.client(unit);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            // Bounded in count as well as time.
            for _ in 0..1_000_000 {
                if Instant::now() >= deadline {
                    break;
                }
                match client.read(REQUEST).await {
                    Ok(words) if words.len() == 13 => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    // Warm-up is included: the first request opens the port.
    let started = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (o, f) = t.await?;
        ok += o;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.cancel();

    let timing = LineTiming::new(baud, bus_config.bits_per_char());
    let cycle = timing.cycle(8, 5 + 2 * usize::from(REQUEST.count));
    let limit = 1.0 / cycle.as_secs_f64();
    let achieved = ok as f64 / elapsed;
    println!(
        "{baud:>6} baud, {} unit(s): {ok} reads in {elapsed:.2} s = {achieved:.1}/s; \
         wire limit {limit:.1}/s (cycle {:.2} ms) -> utilisation {:.1} %; {failed} failed",
        units.len(),
        cycle.as_secs_f64() * 1e3,
        100.0 * achieved / limit
    );
    Ok(())
}

// One thread, as the gateway's daemon runs (`gridwatch-gateway run`); the
// simulated line shares it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let run = Duration::from_secs(
        std::env::args()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    for baud in [9_600, 115_200] {
        measure(baud, &[1], run).await?;
        measure(baud, &[1, 2, 3], run).await?;
    }
    Ok(())
}

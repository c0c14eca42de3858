//! How long one poll of a DL/T 645 meter takes on a line paced at the real
//! baud rate, and how much of that time the line is busy: the figures in
//! docs/BENCHMARKS.md. Run with
//! `cargo run --release -p gridwatch-tests --example dlt645_poll_time`.

use gridwatch_dlt645::{Address, Frame, DEFAULT_WAKE_UP};
use gridwatch_gateway::bus::dlt645::Dlt645Line;
use gridwatch_gateway::devices::dlt645::{quantities, Dlt645Device};
use gridwatch_gateway::devices::{Device, PollOutcome};
use gridwatch_simulators::dlt645::{Line, LineTiming, Meter, PtyLine, SharedLine};
use gridwatch_telemetry::SystemClock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POLLS: u32 = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    for (baud, phases) in [(2400, 1), (2400, 3), (9600, 1), (9600, 3)] {
        let address = Address::parse("000000000001")?;
        let line: SharedLine = Arc::new(Mutex::new(Line::new(vec![Meter::new(
            address, phases, 1000.0, 5.0,
        )])));
        let timing = LineTiming {
            baud,
            pace: true,
            turnaround: Duration::from_millis(20),
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let pty = PtyLine::open(
            line.clone(),
            Arc::new(SystemClock),
            timing,
            shutdown.clone(),
        )?;
        let serial = Arc::new(Dlt645Line::new(pty.path().to_owned(), baud));
        let mut meter = Dlt645Device::new(
            serial,
            address,
            phases,
            DEFAULT_WAKE_UP,
            Duration::from_secs(1),
        );
        // Bytes one poll puts on the wire: requests, and answers (wake-up
        // bytes, 12 bytes of frame, 4 of identifier, the value).
        let qs = quantities(phases);
        let request_bytes: usize = qs
            .iter()
            .map(|q| Frame::read(address, q.di).encoded_len(DEFAULT_WAKE_UP))
            .sum();
        let answer_bytes: usize = qs
            .iter()
            .map(|q| DEFAULT_WAKE_UP + 12 + 4 + q.di.format().map_or(0, |f| usize::from(f.bytes)))
            .sum();
        let started = Instant::now();
        for _ in 0..POLLS {
            if let PollOutcome::Unreachable(why) = meter.poll().await {
                anyhow::bail!("poll failed: {why}");
            }
        }
        let per_poll = started.elapsed().as_secs_f64() / f64::from(POLLS);
        let wire = |bytes: usize| bytes as f64 * 11.0 / f64::from(baud);
        let turnaround = qs.len() as f64 * timing.turnaround.as_secs_f64();
        // The pty carries the gateway's requests at once; only the meter's
        // answers are paced. A real line also carries the requests.
        let overhead = per_poll - wire(answer_bytes) - turnaround;
        println!(
            "{baud} baud, {phases}-phase: {} requests; measured poll {:.0} ms = answers on the \
             wire {:.0} ms + meter turnaround {:.0} ms + the rest (gateway, pty, simulator) {:.0} ms ({:.1} ms a request); \
             on a real line add the requests' {:.0} ms: {:.2} s a poll",
            qs.len(),
            per_poll * 1000.0,
            wire(answer_bytes) * 1000.0,
            turnaround * 1000.0,
            overhead * 1000.0,
            overhead * 1000.0 / qs.len() as f64,
            wire(request_bytes) * 1000.0,
            per_poll + wire(request_bytes),
        );
        shutdown.cancel();
        pty.join().await?;
    }
    Ok(())
}

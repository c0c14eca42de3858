//! Modbus RTU over RS-485: one task per serial port, one request at a time.
//!
//! Every device on a line shares it, so the line is owned by one task
//! ([`spawn`]) and devices hold an [`RtuClient`] that queues requests to it.
//! The task keeps the timing the Modbus serial-line spec asks for: it sends
//! only after the line has been quiet for 3.5 characters (1.75 ms above
//! 19 200 baud), knows a response is complete from its function code and
//! byte count, checks the CRC, and throws away stray bytes before it sends.
//! Fairness and dead devices are [`schedule`]'s business; framing is
//! [`frame`]'s, and both are sans-IO. tokio-modbus's own RTU client does
//! none of this timing (docs/pitfalls.md), which is why the gateway owns it.
//!
//! A port that cannot be opened (adapter unplugged, wrong path) fails each
//! request with the reason and is reopened with a backoff; nothing here
//! ends the daemon.

pub mod config;
pub mod frame;
pub mod pause;
pub mod schedule;

use super::{BusError, ReadRequest, RegisterReader};
use crate::net::Backoff;
pub use config::{Parity, SerialBusConfig};
use frame::{Answer, Progress, ResponseReader, RtuRequest};
use gridwatch_firmware::slave::rtu::silence_us;
pub use pause::Pause;
use schedule::{Scheduler, Turn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Requests queued per bus at most; each device has one in flight, so this
/// only fills if hundreds of devices share a line.
const QUEUE: usize = 256;

/// The time one character takes on the wire and the silence that ends a
/// frame, for a line's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTiming {
    /// One character (start, data, parity, stop bits).
    pub char_time: Duration,
    /// Inter-frame silence: 3.5 characters, 1.75 ms above 19 200 baud.
    pub silence: Duration,
}

impl LineTiming {
    /// Timing of `bus`'s line.
    pub fn of(bus: &SerialBusConfig) -> Self {
        Self::new(bus.baud, bus.bits_per_char())
    }

    /// Timing at `baud` with `bits_per_char` bits per character.
    pub fn new(baud: u32, bits_per_char: u32) -> Self {
        let baud = u64::from(baud.max(1));
        Self {
            char_time: Duration::from_nanos(u64::from(bits_per_char) * 1_000_000_000 / baud),
            silence: Duration::from_micros(silence_us(baud as u32)),
        }
    }

    /// Time `bytes` characters take on the wire.
    pub fn wire_time(&self, bytes: usize) -> Duration {
        self.char_time * u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// The shortest a request/response cycle can be: request, silence,
    /// response, silence. The limit the bus's utilisation is measured against.
    pub fn cycle(&self, request_bytes: usize, response_bytes: usize) -> Duration {
        self.wire_time(request_bytes + response_bytes) + 2 * self.silence
    }
}

struct Job {
    unit: u8,
    /// The device's `offline_after_failures`: failed requests in a row
    /// before its unit is absent.
    offline_after_failures: u32,
    request: RtuRequest,
    reply: oneshot::Sender<Result<Answer, BusError>>,
}

/// A device's access to its bus: queues requests for one unit.
#[derive(Debug, Clone)]
pub struct RtuClient {
    jobs: mpsc::Sender<Job>,
    unit: u8,
    offline_after_failures: u32,
    port: Arc<str>,
}

impl RtuClient {
    /// The same client, whose unit is absent only after
    /// `offline_after_failures` failed requests in a row (the device's
    /// setting; the default is
    /// [`DEFAULT_ABSENT_AFTER`]).
    pub fn offline_after_failures(mut self, failures: u32) -> Self {
        self.offline_after_failures = failures;
        self
    }

    /// `unit 3 on /dev/ttyUSB0`, for log lines.
    pub fn address(&self) -> String {
        format!("unit {} on {}", self.unit, self.port)
    }

    /// Runs one transaction through the bus task.
    pub async fn call(&self, request: RtuRequest) -> Result<Answer, BusError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            unit: self.unit,
            offline_after_failures: self.offline_after_failures,
            request,
            reply,
        };
        let stopped = || BusError::Unreachable(format!("the bus on {} has stopped", self.port));
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Switches coil `address` (FC 0x05).
    pub async fn write_coil(&self, address: u16, on: bool) -> Result<(), BusError> {
        self.write(RtuRequest::WriteCoil { address, on }).await
    }

    /// Writes holding register `address` (FC 0x06).
    pub async fn write_register(&self, address: u16, value: u16) -> Result<(), BusError> {
        self.write(RtuRequest::WriteRegister { address, value })
            .await
    }

    async fn write(&self, request: RtuRequest) -> Result<(), BusError> {
        match self.call(request).await? {
            Answer::Written => Ok(()),
            Answer::Exception(code) => Err(BusError::Exception { code }),
            Answer::Words(_) => Err(BusError::Unreachable(format!(
                "{request} was answered with register values"
            ))),
        }
    }
}

impl RegisterReader for RtuClient {
    async fn read(&mut self, request: ReadRequest) -> Result<Vec<u16>, BusError> {
        match self.call(RtuRequest::Read(request)).await? {
            Answer::Words(words) => Ok(words),
            Answer::Exception(code) => Err(BusError::Exception { code }),
            Answer::Written => Err(BusError::Unreachable(format!(
                "{request} was answered as a write"
            ))),
        }
    }
}

/// A running bus: hands out clients for its units.
#[derive(Debug, Clone)]
pub struct RtuBus {
    jobs: mpsc::Sender<Job>,
    port: Arc<str>,
}

/// Consecutive failed requests after which a unit counts as absent, unless
/// its device says otherwise (`offline_after_failures`); the config's
/// default refers to this, so the bus need not know the config.
pub const DEFAULT_ABSENT_AFTER: u32 = 3;

impl RtuBus {
    /// The client of `unit` on this bus.
    pub fn client(&self, unit: u8) -> RtuClient {
        RtuClient {
            jobs: self.jobs.clone(),
            unit,
            offline_after_failures: DEFAULT_ABSENT_AFTER,
            port: self.port.clone(),
        }
    }
}

/// Starts the task that owns `config`'s serial port until `shutdown`. The
/// port is opened by the task (and reopened after failures), so this does
/// not fail.
pub fn spawn(config: &SerialBusConfig, shutdown: CancellationToken) -> RtuBus {
    spawn_joinable(config, shutdown).0
}

/// [`spawn`], with the task's handle: it ends (and the port is closed)
/// after `shutdown` or once every client is dropped. `scan` awaits it
/// before opening the same port at other line settings.
pub fn spawn_joinable(
    config: &SerialBusConfig,
    shutdown: CancellationToken,
) -> (RtuBus, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let port: Arc<str> = config.port.display().to_string().into();
    let task = BusTask {
        timing: LineTiming::of(config),
        config: config.clone(),
        port_name: port.clone(),
        scheduler: Scheduler::new(config.retries, config.probe_interval()),
        quiet_at: Instant::now(),
        pause: Pause::new(),
    };
    let handle = tokio::spawn(task.run(rx, shutdown));
    (RtuBus { jobs: tx, port }, handle)
}

/// Why a transaction got no valid answer.
enum Failure {
    /// Nothing valid arrived in time, or a damaged frame: retry.
    NoAnswer(String),
    /// The port itself failed: reopen it.
    Port(String),
}

struct BusTask {
    config: SerialBusConfig,
    timing: LineTiming,
    port_name: Arc<str>,
    scheduler: Scheduler<Job>,
    /// When the line will have been quiet long enough to send.
    quiet_at: Instant,
    /// Waits out the silences to within microseconds (tokio's timer would
    /// round each up to a millisecond).
    pause: Pause,
}

impl BusTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, shutdown: CancellationToken) {
        let mut port: Option<SerialStream> = None;
        let mut reopen = Backoff::new(Duration::from_millis(500), self.config.probe_interval());
        let mut open_again_at = Instant::now();
        info!(
            "RS-485 bus {} on {}: one request at a time, {} µs between frames",
            self.config.id,
            self.config.describe(),
            self.timing.silence.as_micros()
        );
        loop {
            if self.scheduler.is_empty() {
                tokio::select! {
                    job = rx.recv() => match job {
                        Some(job) => self.scheduler.push(job.unit, job),
                        None => break,
                    },
                    _ = shutdown.cancelled() => break,
                }
            }
            while let Ok(job) = rx.try_recv() {
                self.scheduler.push(job.unit, job);
            }
            if port.is_none() {
                if Instant::now() < open_again_at {
                    self.fail_all(&format!("{} could not be opened", self.port_name));
                    continue;
                }
                match self.open() {
                    Ok(p) => {
                        reopen.reset();
                        port = Some(p);
                    }
                    Err(reason) => {
                        let wait = reopen.next_delay();
                        warn!(
                            "bus {}: {reason}; trying again in {}",
                            self.config.id,
                            crate::net::words(wait)
                        );
                        open_again_at = Instant::now() + wait;
                        self.fail_all(&reason);
                        continue;
                    }
                }
            }
            let Some(p) = port.as_mut() else { continue };
            let Some((unit, job, turn)) = self.scheduler.next(Instant::now().into_std()) else {
                continue;
            };
            if job.reply.is_closed() {
                continue; // the device gave up waiting (shutdown)
            }
            let attempts = match turn {
                Turn::Skip(reason) => {
                    let _ = job.reply.send(Err(BusError::Unreachable(reason)));
                    continue;
                }
                Turn::Send { attempts } => attempts,
            };
            let result = tokio::select! {
                r = self.transact(p, unit, &job.request, attempts) => r,
                _ = shutdown.cancelled() => break,
            };
            let reply = match result {
                Ok(answer) => {
                    if self.scheduler.answered(unit) {
                        info!(
                            "unit {unit} on {} answers again; polling it normally",
                            self.port_name
                        );
                    }
                    Ok(answer)
                }
                Err(Failure::NoAnswer(reason)) => {
                    let now = Instant::now().into_std();
                    let after = job.offline_after_failures;
                    if self.scheduler.failed(unit, now, &reason, after) {
                        warn!(
                            "unit {unit} on {} did not answer {after} requests in a row, \
                             {attempts} tries each ({reason}); trying it every {} until it returns",
                            self.port_name,
                            crate::net::words(self.config.probe_interval())
                        );
                    }
                    Err(BusError::Unreachable(format!("unit {unit}: {reason}")))
                }
                Err(Failure::Port(reason)) => {
                    warn!("bus {}: {reason}; reopening the port", self.config.id);
                    port = None;
                    open_again_at = Instant::now() + reopen.next_delay();
                    Err(BusError::Unreachable(reason))
                }
            };
            let _ = job.reply.send(reply);
        }
        for job in self.scheduler.drain() {
            let _ = job.reply.send(Err(BusError::Unreachable(
                "the gateway is shutting down".into(),
            )));
        }
        debug!("bus {} on {} stopped", self.config.id, self.port_name);
    }

    fn fail_all(&mut self, reason: &str) {
        for job in self.scheduler.drain() {
            let _ = job
                .reply
                .send(Err(BusError::Unreachable(reason.to_owned())));
        }
    }

    fn open(&self) -> Result<SerialStream, String> {
        let c = &self.config;
        let builder = tokio_serial::new(self.port_name.as_ref(), c.baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(match c.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            })
            .stop_bits(if c.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            })
            .flow_control(tokio_serial::FlowControl::None);
        SerialStream::open(&builder).map_err(|e| {
            format!(
                "cannot open serial port {}: {}",
                self.port_name, e.description
            )
        })
    }

    /// One request with up to `attempts` tries.
    async fn transact(
        &mut self,
        port: &mut SerialStream,
        unit: u8,
        request: &RtuRequest,
        attempts: u32,
    ) -> Result<Answer, Failure> {
        let adu = frame::encode(unit, request);
        let mut last = String::new();
        for attempt in 1..=attempts.max(1) {
            match self.once(port, unit, request, &adu).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::NoAnswer(reason)) => {
                    debug!(
                        "unit {unit} on {}, {request}, try {attempt}/{attempts}: {reason}",
                        self.port_name
                    );
                    last = reason;
                }
                Err(port_failure) => return Err(port_failure),
            }
        }
        Err(Failure::NoAnswer(last))
    }

    /// Waits for a quiet line, sends `adu` and reads the answer.
    async fn once(
        &mut self,
        port: &mut SerialStream,
        unit: u8,
        request: &RtuRequest,
        adu: &[u8],
    ) -> Result<Answer, Failure> {
        let io = |e: std::io::Error| {
            Failure::Port(format!(
                "serial port {} failed: {}",
                self.port_name,
                super::io_reason(&e)
            ))
        };
        let mut scratch = [0u8; 256];
        // Stray bytes still arriving (a late answer, noise) must end, and be
        // followed by a full silence, before the line is ours. Bounded: a
        // line that never goes quiet is a failed attempt.
        let give_up_at = Instant::now() + self.config.timeout();
        loop {
            self.pause.until(self.quiet_at).await;
            // Polled once, never waited for: `timeout(ZERO, ..)` would wait
            // for the timer's next millisecond tick.
            let mut stray = ReadBuf::new(&mut scratch);
            let polled = std::future::poll_fn(|cx| {
                Poll::Ready(Pin::new(&mut *port).poll_read(cx, &mut stray))
            })
            .await;
            let n = stray.filled().len();
            match polled {
                Poll::Ready(Ok(())) if n > 0 => {
                    debug!("discarded {n} stray bytes on {}", self.port_name);
                    self.quiet_at = Instant::now() + self.timing.silence;
                    if Instant::now() >= give_up_at {
                        return Err(Failure::NoAnswer(
                            "the line never went quiet (another master, or noise?)".into(),
                        ));
                    }
                }
                Poll::Ready(Err(e)) => return Err(io(e)),
                _ => break,
            }
        }
        // Written, not flushed: the port's flush is tcdrain, which blocks
        // the runtime's thread until the request has left the wire (0.8 ms
        // at 115 200 baud, 9 ms at 9600) and tells nothing the deadline
        // below does not already count.
        port.write_all(adu).await.map_err(io)?;
        // The response cannot start before the request has left the wire.
        let mut deadline =
            Instant::now() + self.timing.wire_time(adu.len()) + self.config.timeout();
        let mut reader = ResponseReader::new(unit, *request);
        let mut begun = false;
        let outcome = loop {
            let read = tokio::select! {
                r = port.read(&mut scratch) => r,
                _ = sleep_until(deadline) => break None,
            };
            match read {
                Ok(0) => break None,
                Ok(n) => {
                    self.quiet_at = Instant::now() + self.timing.silence;
                    if !begun {
                        // The timeout is for the answer to begin: once it
                        // has, the rest gets its time on the wire (a long
                        // read at 9600 baud outlasts a short timeout) and
                        // the timeout again, for a device whose characters
                        // are longer than ours (8E1 heard as 8N1).
                        begun = true;
                        let rest =
                            self.timing.wire_time(request.response_len()) + self.config.timeout();
                        deadline = deadline.max(Instant::now() + rest);
                    }
                    if let Progress::Done(result) = reader.push(&scratch[..n]) {
                        break Some(result);
                    }
                }
                Err(e) => return Err(io(e)),
            }
        };
        match outcome {
            Some(Ok(answer)) => {
                if reader.skipped() > 0 {
                    debug!(
                        "skipped {} stray bytes before unit {unit}'s answer on {}",
                        reader.skipped(),
                        self.port_name
                    );
                }
                Ok(answer)
            }
            Some(Err(e)) => Err(Failure::NoAnswer(format!("bad response to {request}: {e}"))),
            None => Err(Failure::NoAnswer(match reader.give_up() {
                Some(e) => format!(
                    "no valid response to {request} within {} ms: {e}",
                    self.config.timeout_ms
                ),
                None => format!(
                    "no answer to {request} within {} ms",
                    self.config.timeout_ms
                ),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_follows_the_serial_line_spec() {
        let slow = LineTiming::new(9_600, 11);
        assert_eq!(slow.char_time, Duration::from_nanos(1_145_833));
        assert_eq!(slow.silence, Duration::from_micros(4_010), "3.5 characters");
        let fast = LineTiming::new(115_200, 11);
        assert_eq!(
            fast.silence,
            Duration::from_micros(1_750),
            "fixed above 19 200 baud"
        );
        // 8-byte request, 31-byte response, two silences.
        assert_eq!(
            fast.cycle(8, 31),
            fast.wire_time(39) + Duration::from_micros(3_500)
        );
    }

    #[tokio::test]
    async fn a_port_that_cannot_be_opened_fails_reads_in_words_and_stays_up() {
        let stop = CancellationToken::new();
        let config = SerialBusConfig::new("rs485-1", "/dev/gridwatch-no-such-port");
        let bus = spawn(&config, stop.clone());
        let mut client = bus.client(3);
        let request = ReadRequest {
            function: crate::profile::Function::Holding,
            start: 0,
            count: 2,
        };
        for _ in 0..2 {
            let e = timeout_read(&mut client, request).await;
            assert!(
                e.contains("/dev/gridwatch-no-such-port"),
                "the reason names the port: {e}"
            );
        }
        assert_eq!(client.address(), "unit 3 on /dev/gridwatch-no-such-port");
        stop.cancel();
    }

    async fn timeout_read(client: &mut RtuClient, request: ReadRequest) -> String {
        match tokio::time::timeout(Duration::from_secs(5), client.read(request)).await {
            Ok(Err(BusError::Unreachable(reason))) => reason,
            other => panic!("expected an unreachable error, got {other:?}"),
        }
    }
}

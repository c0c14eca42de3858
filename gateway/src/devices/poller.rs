//! The task that polls one device for as long as the gateway runs.
//!
//! Polls start on a fixed schedule (a tokio interval with
//! `MissedTickBehavior::Skip`: a slow or late poll never causes a burst,
//! and the schedule keeps its phase — the next poll is on the original
//! grid, not one period after the late one. A meter that closes an interval
//! value every N minutes is then read at the same offset into each interval;
//! with `Delay` every late tick moved the phase for good, and once it had
//! wandered onto the interval ends a poll could read one interval twice and
//! miss the next (seen in `gridwatch-sim district-live` at 6000×).) While the device does not answer, attempts follow a backoff
//! from the poll interval up to `retry_max_ms` instead; the first answer
//! puts it back on schedule. Nothing a device does ends the task: only the
//! shutdown signal does.

use super::availability::{Availability, State};
use super::metronome::Beats;
use super::report::{ExceptionFilter, ReportPolicy};
use super::{Device, DeviceStamp, PollOutcome};
use crate::net::{words, Backoff};
use crate::outbox::{Record, RecordSender};
use crate::status::Health;
use gridwatch_telemetry::{Clock, EventKind, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// Timing of one poller, from the device's config.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Time between poll starts while the device answers.
    pub poll_interval: Duration,
    /// Longest wait between attempts while it does not.
    pub retry_max: Duration,
    /// Failed polls in a row before it is reported offline.
    pub offline_after_failures: u32,
}

/// One device's polling task.
pub struct Poller<D: Device> {
    device: D,
    stamp: DeviceStamp,
    schedule: Schedule,
    availability: Availability,
    backoff: Backoff,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    sender: RecordSender,
    report: Option<ExceptionFilter>,
    /// The longest `values` JSON so far: the next buffer is made that big.
    values_json_len: usize,
    /// Beats of a shared [`super::metronome`], instead of a timer of its own.
    beats: Option<Beats>,
}

impl<D: Device> Poller<D> {
    /// A poller for `device` that stamps with `stamp` and sends through `sender`.
    pub fn new(
        device: D,
        stamp: DeviceStamp,
        schedule: Schedule,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        sender: RecordSender,
    ) -> Self {
        Self {
            device,
            stamp,
            availability: Availability::new(schedule.offline_after_failures),
            backoff: Backoff::new(schedule.poll_interval, schedule.retry_max),
            schedule,
            clock,
            health,
            sender,
            report: None,
            values_json_len: 0,
            beats: None,
        }
    }

    /// Sends readings by exception (see [`super::report`]) when `policy` is
    /// given, every reading otherwise.
    pub fn with_report(mut self, policy: Option<ReportPolicy>) -> Self {
        self.report = policy.map(ExceptionFilter::new);
        self
    }

    /// Starts polls on the beats of a shared metronome
    /// ([`super::metronome::Metronomes::beats`] for the poll interval)
    /// instead of a timer of its own: same grid, fewer wake-ups.
    pub fn with_beats(mut self, beats: Option<Beats>) -> Self {
        self.beats = beats;
        self
    }

    /// Polls until `shutdown`, then closes the connection.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(self.schedule.poll_interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut retry_in: Option<Duration> = None;
        loop {
            let beats = &mut self.beats;
            let wait = async {
                match (retry_in, beats) {
                    (None, None) => {
                        interval.tick().await;
                    }
                    (None, Some(beats)) => {
                        // Beats missed during a slow poll count as one, which
                        // starts the next poll at once; then the grid again,
                        // as the interval's `MissedTickBehavior::Skip` does.
                        if !beats.next().await {
                            // The metronome stopped: the gateway is stopping.
                            std::future::pending::<()>().await;
                        }
                    }
                    (Some(d), _) => tokio::time::sleep(d).await,
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = shutdown.cancelled() => break,
            }
            let started = tokio::time::Instant::now();
            self.sender.poll_started();
            let outcome = tokio::select! {
                outcome = self.device.poll() => outcome,
                _ = shutdown.cancelled() => break,
            };
            // A device that answers only with exceptions (a converter
            // saying "no such unit") gave nothing: counted as unanswered.
            let (answered, partial) = match &outcome {
                PollOutcome::Unreachable(_) => (false, false),
                PollOutcome::Answered {
                    measurements,
                    errors,
                } => (
                    !measurements.is_empty() || errors.is_empty(),
                    !errors.is_empty(),
                ),
            };
            self.health.record_poll(
                self.stamp.device().as_str(),
                answered,
                partial,
                started.elapsed(),
            );
            let now = self.clock.now();
            let delivered = match outcome {
                PollOutcome::Unreachable(reason) => {
                    let delay = self.backoff.next_delay();
                    retry_in = Some(delay);
                    self.unreachable(now, &reason, delay, &shutdown).await
                }
                PollOutcome::Answered {
                    measurements,
                    errors,
                } => {
                    if retry_in.take().is_some() {
                        // Back on schedule, counting from this poll.
                        interval.reset();
                    }
                    self.backoff.reset();
                    self.answered(now, measurements, &errors, &shutdown).await
                }
            };
            self.sender.poll_finished();
            if let (None, Some(beats)) = (retry_in, &self.beats) {
                beats.polled();
            }
            if !delivered {
                break;
            }
        }
        self.device.close().await;
        debug!("stopped polling {}", self.stamp.device());
    }

    async fn unreachable(
        &mut self,
        now: Timestamp,
        reason: &str,
        delay: Duration,
        shutdown: &CancellationToken,
    ) -> bool {
        let was = self.availability.state();
        let device = self.stamp.device().clone();
        let address = self.device.address();
        if let Some(filter) = &mut self.report {
            // Its first answer after this is news, whatever the values.
            filter.reset();
        }
        match self.availability.failed(reason) {
            Some(event) => {
                if was == State::Online {
                    self.health.device_down();
                }
                self.health.record_offline(device.as_str());
                warn!(
                    "{device} at {address} did not answer {} polls in a row ({reason}); \
                     reporting it offline and retrying at most {} apart until it returns",
                    self.availability.failures(),
                    words(self.backoff.max()),
                );
                self.send_event(now, event, shutdown).await
            }
            None if was == State::Offline => {
                debug!(
                    "{device} at {address} is still unreachable ({reason}); retrying in {}",
                    words(delay)
                );
                true
            }
            None => {
                info!(
                    "{device} at {address} did not answer ({reason}); retrying in {}",
                    words(delay)
                );
                true
            }
        }
    }

    async fn answered(
        &mut self,
        now: Timestamp,
        measurements: Vec<super::Measurement>,
        errors: &[String],
        shutdown: &CancellationToken,
    ) -> bool {
        let was = self.availability.state();
        let events = self.availability.answered(errors);
        if was != State::Online || !events.is_empty() {
            // Only for the log lines: not formatted on every poll.
            self.log_answer(was, &events, measurements.len());
        }
        for event in events {
            if !self.send_event(now, event, shutdown).await {
                return false;
            }
        }
        for mut m in measurements {
            if self.report.is_some() {
                // The filter compares maps; without it no map is built.
                m = m.into_map();
            }
            if let Some(filter) = &mut self.report {
                if !filter.admit(now, &m) {
                    continue;
                }
            }
            let flat = m.flat.take();
            let reading = self.stamp.reading(now, m);
            let record = match flat {
                None => Record::Reading(reading),
                Some(flat) => {
                    let mut values_json =
                        Vec::with_capacity(self.values_json_len + super::modbus::flat::JSON_SLACK);
                    if let Err(e) = flat.write_json(&mut values_json) {
                        error!(
                            "a reading of {} could not be encoded and is not kept: {e}",
                            self.stamp.device()
                        );
                        continue;
                    }
                    self.values_json_len = self.values_json_len.max(values_json.len());
                    Record::Prepared {
                        reading,
                        values_json,
                    }
                }
            };
            if !self.sender.send(record, shutdown).await {
                return false;
            }
        }
        true
    }

    /// Logs a device that answers again, or for the first time, and the
    /// device errors of its answer.
    fn log_answer(&self, was: State, events: &[EventKind], readings: usize) {
        let device = self.stamp.device();
        let address = self.device.address();
        if was != State::Online {
            self.health.device_up();
            match was {
                State::Offline => info!("{device} at {address} answers again"),
                _ => info!("{device} at {address} answered its first poll ({readings} readings)"),
            }
        }
        for event in events {
            if let EventKind::DeviceError { message } = event {
                warn!("{device} at {address}: {message}");
            }
        }
    }

    async fn send_event(
        &mut self,
        now: Timestamp,
        kind: EventKind,
        shutdown: &CancellationToken,
    ) -> bool {
        let event = self.stamp.event(now, kind);
        self.sender.send(Record::Event(event), shutdown).await
    }
}

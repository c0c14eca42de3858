//! `gridwatch-sim demo`: the whole chain in one process, on loopback, with
//! nothing installed — an embedded broker, a simulated yard (pile, gateway,
//! analytics), a fault injected after a while, and the alert printed as a
//! grid staff member would read it.
//!
//! The demo reads alerts from the broker like any other consumer, so what it
//! prints has really crossed MQTT.

mod console;
mod directory;
pub(crate) mod watch;

use directory::Scratch;
pub use directory::{demo_directory, demo_directory_covering, DemoLogin};
use watch::{watch, Seen};

use crate::broker::EmbeddedBroker;
use crate::district::{self, feed, feed::demo_scenario};
use crate::pile::Fault;
use crate::yard::{Yard, YardOptions};
use anyhow::Context as _;
use gridwatch_telemetry::{Alert, EventKind, GatewayState, Reading};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Seed of the demo's district: fixed, so every run shows the same flats.
const DISTRICT_SEED: u64 = 1;

/// `no_data_min` of the demo's analytics while the district plays: 60 days,
/// longer than the district's recording (21 days) and any demo run at 30×.
const NO_DATA_MIN_WITH_DISTRICT: u32 = 60 * 24 * 60;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which fault the demo injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoFault {
    /// A charger drawing about 7 A (1.6 kW) on an e-bike socket.
    Overcurrent,
    /// A socket heating up by about 3 °C per minute towards 80 °C.
    Overtemp,
}

/// Options of the demo.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// The fault to inject.
    #[arg(long, value_enum, default_value = "overcurrent")]
    pub fault: DemoFault,
    /// Socket that gets the fault (a charging one: 1, 2 or 4).
    #[arg(long, default_value_t = 2)]
    pub socket: u16,
    /// Wall-clock seconds before the fault is injected.
    #[arg(long, default_value_t = 10)]
    pub fault_after_s: u64,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 30.0)]
    pub speed: f64,
    /// Give up if no alert arrives within this many wall-clock seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Keep running after the alert (until Ctrl-C). With the dashboard on
    /// this is what happens anyway, unless --exit-after-alert.
    #[arg(long)]
    pub keep_running: bool,
    /// Stop a few seconds after the first alert (and the first district
    /// alert, unless --no-district) even with the dashboard on (for scripts
    /// and tests).
    #[arg(long)]
    pub exit_after_alert: bool,
    /// Port of the dashboard on 127.0.0.1; when taken, any free port is used
    /// (the URL printed says which).
    #[arg(long, default_value_t = 8080)]
    pub dashboard_port: u16,
    /// Do not start the dashboard (the console output alone, as before).
    #[arg(long)]
    pub no_dashboard: bool,
    /// Do not play the simulated district (flats with meters, some of them
    /// group rentals or charging e-bikes indoors) next to the yard.
    #[arg(long)]
    pub no_district: bool,
    /// Seconds between the pile status lines.
    #[arg(long, default_value_t = 5)]
    pub status_every_s: u64,
    /// Print what the console printed before: every sighting, device event
    /// and alert in full, and the components' info logs (unless `RUST_LOG`
    /// says otherwise).
    #[arg(long)]
    pub verbose: bool,
}

/// What the demo observed, for tests.
#[derive(Debug)]
pub struct DemoOutcome {
    /// Alerts received from the broker.
    pub alerts: Vec<Alert>,
    /// Wall time from fault injection to the yard's first alert (the
    /// district's alerts do not count: they are not the fault's).
    pub time_to_alert: Option<Duration>,
    /// Rule of the yard's first alert.
    pub first_yard_rule: Option<String>,
    /// Where the dashboard listened, if it ran.
    pub dashboard: Option<std::net::SocketAddr>,
    /// Wall time from the start to the district's first group-rental or
    /// indoor-charging alert.
    pub time_to_district_alert: Option<Duration>,
}

/// Rules of the district's detectors, to tell their alerts from the yard's.
fn is_district_rule(rule: &str) -> bool {
    rule.starts_with("group_rental") || rule.starts_with("indoor_")
}

/// `port` on loopback if it is free now, else any free port (0).
fn dashboard_listen(port: u16) -> std::net::SocketAddr {
    let wanted = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpListener::bind(wanted) {
        Ok(_) => wanted,
        Err(_) => std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

/// Runs the demo, writing what happens to `out`.
pub async fn run(opts: &DemoOptions, out: &mut (impl Write + Send)) -> anyhow::Result<DemoOutcome> {
    let broker = EmbeddedBroker::start()?;
    let mut yard_opts = YardOptions::new(broker.addr());
    yard_opts.speed = opts.speed;
    if !yard_opts.plugged.iter().any(|(s, _)| *s == opts.socket) {
        anyhow::bail!(
            "socket {} has no charger in the demo yard; choose one of {:?}",
            opts.socket,
            yard_opts
                .plugged
                .iter()
                .map(|(s, _)| *s)
                .collect::<Vec<_>>()
        );
    }
    let district = (!opts.no_district).then(demo_scenario);
    let district_sites = district.as_ref().map(district::sites).unwrap_or_default();
    yard_opts.more_sites = district_sites.iter().map(|(s, _)| s.clone()).collect();
    if district.is_some() {
        // The district is weeks of recording played in seconds beside a live
        // yard. Analytics judges a meter's silence against the newest reading
        // of any meter, the yard's live ones, so every district meter would
        // look silent for weeks (building_no_data at once, meter_no_data
        // after the playback). Past the recording's length, no-data cannot
        // fire on the district; stuck and reversed registers still do.
        yard_opts.meter_no_data_min = Some(NO_DATA_MIN_WITH_DISTRICT);
    }
    let mut logins = Vec::new();
    let scratch = Scratch::new()?;
    // The district is generated before analytics starts, so that analytics
    // reads its register (registered occupants, businesses, tag owners).
    let district_dir = scratch.0.join("district");
    let district_flats = match &district {
        Some(scenario) => {
            let summary =
                feed::generate_in_background(scenario, DISTRICT_SEED, &district_dir).await?;
            yard_opts.register = Some(district_dir.join("register.json"));
            summary.flats
        }
        None => 0,
    };
    if !opts.no_dashboard {
        let (text, l) = demo_directory_covering(&yard_opts, &district_sites);
        let file = scratch.0.join("directory.toml");
        std::fs::write(&file, text)
            .with_context(|| format!("writing the demo directory {}", file.display()))?;
        logins = l;
        yard_opts.directory = Some(file);
        yard_opts.api_listen = Some(dashboard_listen(opts.dashboard_port));
    }
    let stay = opts.keep_running || (!opts.no_dashboard && !opts.exit_after_alert);
    let (tx, mut rx) = mpsc::channel(1024);
    let _watcher = watch(broker.port(), tx).await?;
    let yard = Yard::start(&yard_opts).await?;
    let started = Instant::now();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());

    writeln!(
        out,
        "Gridwatch demo: everything runs in this process, on 127.0.0.1 only."
    )?;
    writeln!(out, "  MQTT broker (embedded)     {}", broker.addr())?;
    writeln!(
        out,
        "  charging pile simulator    {} (Modbus TCP, {} sockets, chargers on {})",
        yard.pile_addr,
        yard_opts.sockets,
        yard_opts
            .plugged
            .iter()
            .map(|(s, k)| format!("#{s} {k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "  gateway {}       polls {} every {} ms, publishes to gw/{}/{}/…",
        yard_opts.gateway,
        yard_opts.device,
        yard_opts.poll_interval_ms,
        yard_opts.site,
        yard_opts.gateway
    )?;
    writeln!(
        out,
        "  analytics                  site {} → grid cell {}",
        yard_opts.site, yard_opts.cell
    )?;
    if let Some(addr) = yard.api_addr {
        writeln!(
            out,
            "  dashboard                  http://{addr}/  (log in with one of these tokens, valid for this run only)"
        )?;
        for l in &logins {
            writeln!(
                out,
                "                               {:<17} {:<13} token {}",
                l.role, l.user, l.token
            )?;
        }
    }
    let district_stop = CancellationToken::new();
    let district_on = district.is_some();
    let district_site = |site: &str| district_sites.iter().any(|(s, _)| s == site);
    let mut district_task = district.map(|scenario| {
        writeln!(
            out,
            "  simulated district         site {}: {} flats with electricity, water and gas meters over {} days, some group rentals or charging e-bikes indoors; its readings go to the broker as their gateways' would, the {} days in seconds",
            district_sites.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(", "),
            scenario.flat_count(),
            scenario.days,
            scenario.days
        )
        .ok();
        let dir = district_dir.clone();
        let (broker, stop) = (broker.addr(), district_stop.clone());
        tokio::spawn(async move {
            feed::publish(&scenario, district_flats, &dir, broker, now_ms(), stop).await
        })
    });
    let mut time_to_district_alert = None;
    if district_on {
        writeln!(
            out,
            "  (no-data alerts are off for this run: the district is a recording played beside a live yard, so its meters would all look silent)"
        )?;
    }
    writeln!(
        out,
        "  simulated time runs {}x faster than the wall clock; a fault is injected after {} s",
        opts.speed, opts.fault_after_s
    )?;
    writeln!(
        out,
        "  alerts below: site local time (UTC+8), severity, rule (Chinese and id), place, title; a status line every {} s{}\n",
        opts.status_every_s.max(1),
        if opts.verbose { "" } else { " (--verbose for everything)" }
    )?;
    let alerts_url = yard.api_addr.map(|a| format!("http://{a}/alerts"));
    let mut readings: u64 = 0;
    let mut first_yard_rule: Option<String> = None;

    let fault_at = started + Duration::from_secs(opts.fault_after_s);
    let deadline = fault_at + Duration::from_secs(opts.timeout_s);
    let mut injected_at: Option<Instant> = None;
    let mut latest: BTreeMap<u16, Reading> = BTreeMap::new();
    let mut next_status = started + Duration::from_secs(opts.status_every_s.max(1));
    let mut alerts: Vec<Alert> = Vec::new();
    let mut time_to_alert = None;
    let mut finish_at: Option<Instant> = None;

    let outcome = loop {
        let now = Instant::now();
        if injected_at.is_none() && now >= fault_at {
            let (fault, words) = match opts.fault {
                DemoFault::Overcurrent => (
                    Fault::Overcurrent,
                    "now draws about 7 A (1.6 kW): far too strong for an e-bike charger",
                ),
                DemoFault::Overtemp => (
                    Fault::OverTemperature,
                    "starts heating up by about 3 °C per simulated minute",
                ),
            };
            yard.inject(opts.socket, fault)?;
            injected_at = Some(now);
            writeln!(
                out,
                "[{:>5.1} s] FAULT INJECTED: socket {} of {} {words}",
                secs(started),
                opts.socket,
                yard_opts.device
            )?;
        }
        if now >= next_status {
            if opts.verbose && !latest.is_empty() {
                writeln!(
                    out,
                    "[{:>5.1} s] {}",
                    secs(started),
                    console::pile_line(&yard_opts.device, &latest)
                )?;
            } else if !opts.verbose {
                let yard_alerts = alerts.iter().filter(|a| !district_site(&a.site)).count();
                let socket = latest
                    .get(&opts.socket)
                    .map(|r| {
                        format!(
                            "; {} {}",
                            yard_opts.device,
                            console::socket_text(opts.socket, r)
                        )
                    })
                    .unwrap_or_default();
                writeln!(
                    out,
                    "[{:>5.1} s] {}{socket}",
                    secs(started),
                    console::status_line(
                        readings,
                        alerts.len(),
                        yard_alerts,
                        alerts_url.as_deref()
                    )
                )?;
            }
            next_status = now + Duration::from_secs(opts.status_every_s.max(1));
        }
        if let Some(f) = finish_at {
            if now >= f {
                break Ok(());
            }
        } else if now >= deadline {
            if !alerts.iter().any(|a| !district_site(&a.site)) {
                break Err(anyhow::anyhow!(
                    "no alert arrived within {} s of the fault; something in the chain is broken (rerun with RUST_LOG=info to see the gateway and analytics logs)",
                    opts.timeout_s
                ));
            }
            if district_on && time_to_district_alert.is_none() {
                break Err(anyhow::anyhow!(
                    "the simulated district raised no alert within {} s of the fault (rerun with RUST_LOG=info to see the analytics logs, or use --no-district)",
                    opts.timeout_s
                ));
            }
        }
        if district_task.as_ref().is_some_and(|t| t.is_finished()) {
            let task = district_task.take().expect("checked above");
            report_district(out, started, task.await)?;
        }
        let wait = Duration::from_millis(200);
        let received = tokio::select! {
            r = &mut ctrl_c => {
                r.context("waiting for Ctrl-C")?;
                writeln!(out, "\n[{:>5.1} s] Ctrl-C: stopping", secs(started))?;
                break Ok(());
            }
            r = tokio::time::timeout(wait, rx.recv()) => r,
        };
        match received {
            Ok(Some(Seen::Reading(r))) => {
                readings += 1;
                if r.site.as_str() != yard_opts.site {
                    continue;
                }
                if let Some(s) = r.socket {
                    latest.insert(s, *r);
                }
            }
            Ok(Some(Seen::Status(s)))
                if opts.verbose || s.gateway.as_str() == yard_opts.gateway =>
            {
                let state = match s.state {
                    GatewayState::Online => "online",
                    GatewayState::Offline => "offline",
                };
                writeln!(
                    out,
                    "[{:>5.1} s] gateway {} is {state} ({} of {} devices answering)",
                    secs(started),
                    s.gateway,
                    s.devices_online,
                    s.devices_total
                )?;
            }
            Ok(Some(Seen::Event(e)))
                if opts.verbose
                    || (e.site.as_str() == yard_opts.site
                        && !matches!(e.kind, EventKind::Sighting { .. })) =>
            {
                let what = match &e.kind {
                    EventKind::DeviceOffline { reason } => format!("went offline: {reason}"),
                    EventKind::DeviceOnline => "answers".to_string(),
                    EventKind::DeviceError { message } => format!("error: {message}"),
                    other => format!("{other:?}"),
                };
                writeln!(out, "[{:>5.1} s] {} {what}", secs(started), e.device)?;
            }
            Ok(Some(Seen::Alert(a))) => {
                if time_to_alert.is_none() && a.site == yard_opts.site {
                    time_to_alert = injected_at.map(|t| t.elapsed());
                    first_yard_rule = Some(a.rule.clone());
                }
                if opts.verbose {
                    writeln!(
                        out,
                        "\n[{:>5.1} s] ALERT on alerts/{}/{}",
                        secs(started),
                        a.cell,
                        a.severity
                    )?;
                    writeln!(out, "{}", gridwatch_analytics::render_alert(&a))?;
                } else {
                    writeln!(
                        out,
                        "[{:>5.1} s] {}",
                        secs(started),
                        console::alert_line(&a)
                    )?;
                }
                let district_alert = is_district_rule(&a.rule);
                if district_alert && time_to_district_alert.is_none() {
                    time_to_district_alert = Some(started.elapsed());
                    if let Some(addr) = yard.api_addr {
                        writeln!(
                            out,
                            "The district's alerts are on the dashboard too: http://{addr}/alerts (grid staff token above)."
                        )?;
                    }
                }
                if alerts.iter().all(|a| district_site(&a.site)) && !district_site(&a.site) {
                    if let Some(addr) = yard.api_addr {
                        writeln!(
                            out,
                            "The alert is on the dashboard: http://{addr}/alerts (grid staff token above).{}",
                            if stay { " The demo keeps running until Ctrl-C." } else { "" }
                        )?;
                    }
                }
                alerts.push(*a);
                let pile_seen = alerts.iter().any(|a| !district_site(&a.site));
                let district_done = !district_on || time_to_district_alert.is_some();
                if !stay && finish_at.is_none() && pile_seen && district_done {
                    // Let related alerts of the same fault (e.g. overpower) arrive too.
                    finish_at = Some(Instant::now() + Duration::from_secs(3));
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break Err(anyhow::anyhow!("lost the demo's own MQTT subscription")),
            Err(_) => {}
        }
    };
    let dashboard = yard.api_addr;
    if !opts.verbose {
        // The counts at the end, however short the run.
        let yard_alerts = alerts.iter().filter(|a| !district_site(&a.site)).count();
        writeln!(
            out,
            "[{:>5.1} s] {}",
            secs(started),
            console::status_line(readings, alerts.len(), yard_alerts, alerts_url.as_deref())
        )?;
    }
    district_stop.cancel();
    if let Some(task) = district_task {
        // Say how far the district got, whether it finished or was stopped.
        if let Ok(done) = tokio::time::timeout(Duration::from_secs(5), task).await {
            report_district(out, started, done)?;
        }
    }
    yard.stop().await?;
    outcome?;
    if let (Some(t), Some(rule)) = (time_to_alert, &first_yard_rule) {
        writeln!(
            out,
            "Demo finished: {} alert(s); the yard's first ({rule}, on the socket the fault was injected into) arrived {:.1} s (wall clock) after the fault was injected.",
            alerts.len(),
            t.as_secs_f64()
        )?;
    }
    if let Some(t) = time_to_district_alert {
        writeln!(
            out,
            "The district's first alert arrived {:.1} s (wall clock) after the start.",
            t.as_secs_f64()
        )?;
    }
    Ok(DemoOutcome {
        alerts,
        time_to_alert,
        first_yard_rule,
        dashboard,
        time_to_district_alert,
    })
}

/// One line on what the district's feed did, or why it stopped.
fn report_district(
    out: &mut impl Write,
    started: Instant,
    done: Result<anyhow::Result<feed::Fed>, tokio::task::JoinError>,
) -> std::io::Result<()> {
    match done {
        Ok(Ok(fed)) => writeln!(
            out,
            "[{:>5.1} s] district: {} readings and {} tag sightings of {} flats played{}",
            secs(started),
            fed.readings,
            fed.events,
            fed.flats,
            if fed.stopped_early {
                " (stopped with the demo before the last day)"
            } else {
                ""
            }
        ),
        Ok(Err(e)) => writeln!(out, "[{:>5.1} s] district stopped: {e:#}", secs(started)),
        Err(e) => writeln!(out, "[{:>5.1} s] district stopped: {e}", secs(started)),
    }
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests;

//! `gridwatch-sim`: the demo and the device simulators as a command.
//!
//! This file only parses the command line and dispatches; each subcommand
//! lives in its own module under `cli/` with its arguments and `run`.

mod cli;

use clap::{Parser, Subcommand};
use gridwatch_simulators::{demo, readers};
use std::process::ExitCode;

/// Gridwatch simulators: protocol-true devices and the end-to-end demo.
#[derive(Parser)]
#[command(name = "gridwatch-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole chain in one process (embedded broker, simulated pile,
    /// gateway, analytics), inject a fault and print the alert.
    Demo(demo::DemoOptions),
    /// Serve a simulated charging pile on Modbus TCP until Ctrl-C.
    Pile(cli::pile::PileArgs),
    /// Serve simulated DL/T 645-2007 meters on a pseudo-terminal until
    /// Ctrl-C; prints the port's path. Misbehaviour on demand: type
    /// `<address|all> <behaviour>` on stdin (normal, abnormal[:ERR],
    /// silent, bad-checksum, truncated, noise).
    Dlt645(cli::dlt645::Dlt645Args),
    /// Serve simulated CJ/T 188 water, gas and heat meters on a pseudo-terminal until Ctrl-C; prints the port's path. Misbehaviour on demand: `<address|all> <behaviour>` on stdin (silent, bad-checksum, truncated, noise, low-battery, valve-closed, …).
    Cjt188(gridwatch_simulators::cjt188::cli::Args),
    /// Serve simulated charging piles and profile-driven meters as Modbus
    /// RTU units on a pseudo-terminal (an RS-485 line) until Ctrl-C; prints
    /// the port path to put in the gateway's [[buses]].
    Rtu(cli::rtu::RtuArgs),
    /// Serve any device profile (config/devices) on Modbus TCP until Ctrl-C,
    /// with misbehaviour on demand.
    Meter(cli::meter::MeterArgs),
    /// Generate a synthetic district with ground truth: writes
    /// recording.jsonl, truth.json and register.json into --out.
    District(cli::district::DistrictArgs),
    /// Play a synthetic district live at accelerated time through the real
    /// path: its flats' meters on Modbus TCP (127.0.0.1), one real gateway
    /// per building polling them, readings published to an MQTT broker.
    /// Generates the district into --out first (or reuses it: --reuse).
    DistrictLive(cli::district::DistrictLiveArgs),
    /// A scaled district streamed into NATS JetStream at accelerated time,
    /// for the city-scale analytics workers (docs/scale.md).
    City(cli::city::CityArgs),
    /// A plate camera publishing JSON sightings to an MQTT broker.
    ReaderMqtt(readers::cli::MqttArgs),
    /// A serial RFID reader on a pty, linked at --link.
    ReaderSerial(readers::cli::SerialArgs),
    /// Test scenarios as files: simulators, a timeline of faults and the
    /// alerts expected, run through a real gateway and analytics (see
    /// docs/scenarios.md). Exit 0 passed, 1 failed, 2 could not run.
    Scenario(gridwatch_simulators::scenario::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Demo(opts) => {
            // Warnings only: the console shows alerts and a status line;
            // --verbose brings back the components' info logs. Escalations
            // are left out: the district's alerts carry past times, so each
            // escalates at once, and the console shows every alert anyway.
            cli::init_logs(if opts.verbose {
                "info,rumqttd=off"
            } else {
                "warn,rumqttd=off,gridwatch_analytics::dispatch=error"
            });
            demo::run(&opts, &mut std::io::stdout()).await.map(|_| ())
        }
        Command::Pile(args) => {
            cli::init_logs("info");
            cli::pile::run(args).await
        }
        Command::Rtu(args) => {
            cli::init_logs("info");
            cli::rtu::run(args).await
        }
        Command::District(args) => cli::district::run(&args),
        Command::DistrictLive(args) => {
            cli::init_logs("error,rumqttd=off");
            cli::with_ctrl_c(|stop| async move { cli::district::run_live(&args, stop).await }).await
        }
        Command::City(args) => {
            cli::init_logs("warn");
            cli::city::run(&args).await
        }
        Command::Dlt645(args) => {
            cli::init_logs("info");
            cli::dlt645::run(args).await
        }
        Command::Cjt188(args) => {
            cli::init_logs("info");
            gridwatch_simulators::cjt188::cli::run(args).await
        }
        Command::Meter(args) => {
            cli::init_logs("info");
            cli::meter::run(args).await
        }
        Command::ReaderMqtt(args) => {
            cli::init_logs("info");
            cli::with_ctrl_c(|stop| async move { readers::cli::run_mqtt(&args, stop).await }).await
        }
        Command::ReaderSerial(args) => {
            cli::init_logs("info");
            cli::with_ctrl_c(|stop| async move { readers::cli::run_serial(&args, stop).await })
                .await
        }
        Command::Scenario(args) => {
            // Its own exit status: 1 is a failed expectation, 2 a scenario
            // that could not run.
            cli::init_logs(
                "warn,rumqttd=off,gridwatch_analytics::dispatch=error,gridwatch_gateway::daemon=error",
            );
            return match gridwatch_simulators::scenario::main(&args, &mut std::io::stdout()).await {
                Ok(outcome) => ExitCode::from(outcome.code()),
                Err(e) => {
                    eprintln!("gridwatch-sim: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridwatch-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The meter on the network: a Modbus TCP server in front of [`SharedMeter`]s,
//! with misbehaviour on demand.
//!
//! [`MeterService`] is a `tokio_modbus::server::Service` over the
//! transport-independent [`Image`](super::image::Image), so an RTU front end
//! can reuse it. One server can stand for several devices behind one address
//! (unit ids, as behind a TCP-to-RTU gateway). [`Behaviour`] switches, while
//! running, between answering, answering every request with an exception,
//! staying silent (the client times out), and being gone (port closed,
//! connections dropped) until it returns.

use super::image::ImageError;
use super::model::SharedMeter;
use gridwatch_gateway::profile::Function;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// How the simulated devices behave right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answer every request from the register image.
    #[default]
    Normal,
    /// Answer every request with this Modbus exception code.
    Exception(u8),
    /// Read requests and never answer them (the client's timeout fires).
    Silent,
    /// Close the port and every connection, as a device that lost power.
    Absent,
}

impl std::str::FromStr for Behaviour {
    type Err = String;

    /// `normal`, `exception=4`, `silent`, `absent`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            None if s == "normal" => Ok(Behaviour::Normal),
            None if s == "silent" => Ok(Behaviour::Silent),
            None if s == "absent" => Ok(Behaviour::Absent),
            Some(("exception", code)) => code
                .parse::<u8>()
                .ok()
                .filter(|c| (1..=11).contains(c))
                .map(Behaviour::Exception)
                .ok_or_else(|| format!("exception code {code:?} is not 1..=11")),
            _ => Err(format!(
                "{s:?} is not a behaviour: use normal, exception=N, silent or absent"
            )),
        }
    }
}

/// Changes the behaviour of a running server, and counts its connections
/// and the write requests it received (a scan must issue none).
#[derive(Debug, Clone)]
pub struct Control {
    behaviour: Arc<watch::Sender<Behaviour>>,
    connections: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
}

impl Control {
    /// Starts in `initial`.
    pub fn new(initial: Behaviour) -> Self {
        Self {
            behaviour: Arc::new(watch::channel(initial).0),
            connections: Arc::new(AtomicU64::new(0)),
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Write requests received so far (coils or registers, any unit,
    /// answered or refused).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Switches to `b` now.
    pub fn set(&self, b: Behaviour) {
        self.behaviour.send_replace(b);
    }

    /// The current behaviour.
    pub fn get(&self) -> Behaviour {
        *self.behaviour.borrow()
    }

    /// Client connections accepted so far (a gateway sharing one connection
    /// per address opens one).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    fn subscribe(&self) -> watch::Receiver<Behaviour> {
        self.behaviour.subscribe()
    }
}

impl From<ImageError> for ExceptionCode {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::IllegalDataAddress { .. } => ExceptionCode::IllegalDataAddress,
            ImageError::IllegalDataValue { .. } => ExceptionCode::IllegalDataValue,
            ImageError::ReadOnly { .. } => ExceptionCode::IllegalFunction,
        }
    }
}

fn exception(code: u8) -> ExceptionCode {
    match code {
        1 => ExceptionCode::IllegalFunction,
        2 => ExceptionCode::IllegalDataAddress,
        3 => ExceptionCode::IllegalDataValue,
        4 => ExceptionCode::ServerDeviceFailure,
        5 => ExceptionCode::Acknowledge,
        6 => ExceptionCode::ServerDeviceBusy,
        8 => ExceptionCode::MemoryParityError,
        10 => ExceptionCode::GatewayPathUnavailable,
        11 => ExceptionCode::GatewayTargetDevice,
        other => ExceptionCode::Custom(other),
    }
}

/// The devices behind one address, by unit id.
pub type Units = Arc<BTreeMap<u8, SharedMeter>>;

/// Answers one connection's requests from the devices behind it.
#[derive(Debug, Clone)]
pub struct MeterService {
    units: Units,
    control: Control,
}

impl MeterService {
    /// A service for `units`, behaving as `control` says.
    pub fn new(units: Units, control: Control) -> Self {
        Self { units, control }
    }

    /// The answer to one request, or the exception to send.
    pub fn answer(&self, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        let unit = req.slave;
        if matches!(
            req.request,
            Request::WriteSingleCoil(..)
                | Request::WriteSingleRegister(..)
                | Request::WriteMultipleRegisters(..)
                | Request::WriteMultipleCoils(..)
                | Request::MaskWriteRegister(..)
                | Request::ReadWriteMultipleRegisters(..)
        ) {
            self.control.writes.fetch_add(1, Ordering::Relaxed);
        }
        // Unit 0 and 255 mean "the device at this address" on Modbus TCP.
        let meter = match self.units.get(&unit) {
            Some(m) => m,
            None if (unit == 0 || unit == 255) && self.units.len() == 1 => self
                .units
                .values()
                .next()
                .ok_or(ExceptionCode::GatewayTargetDevice)?,
            None => return Err(ExceptionCode::GatewayTargetDevice),
        };
        let bits = |w: Vec<u16>| w.into_iter().map(|x| x != 0).collect::<Vec<bool>>();
        meter.with(|m| {
            let image = m.image_mut();
            Ok(match req.request {
                Request::ReadHoldingRegisters(a, n) => {
                    Response::ReadHoldingRegisters(image.read(Function::Holding, a, n)?)
                }
                Request::ReadInputRegisters(a, n) => {
                    Response::ReadInputRegisters(image.read(Function::Input, a, n)?)
                }
                Request::ReadCoils(a, n) => {
                    Response::ReadCoils(bits(image.read(Function::Coils, a, n)?))
                }
                Request::ReadDiscreteInputs(a, n) => Response::ReadDiscreteInputs(bits(
                    image.read(Function::DiscreteInputs, a, n)?,
                )),
                Request::WriteSingleCoil(a, on) => {
                    image.write(Function::Coils, a, &[u16::from(on)])?;
                    Response::WriteSingleCoil(a, on)
                }
                Request::WriteSingleRegister(a, v) => {
                    image.write(Function::Holding, a, &[v])?;
                    Response::WriteSingleRegister(a, v)
                }
                Request::WriteMultipleRegisters(a, values) => {
                    image.write(Function::Holding, a, &values)?;
                    Response::WriteMultipleRegisters(a, u16::try_from(values.len()).unwrap_or(0))
                }
                Request::WriteMultipleCoils(a, values) => {
                    let words: Vec<u16> = values.iter().map(|b| u16::from(*b)).collect();
                    image.write(Function::Coils, a, &words)?;
                    Response::WriteMultipleCoils(a, u16::try_from(words.len()).unwrap_or(0))
                }
                _ => return Err(ExceptionCode::IllegalFunction),
            })
        })
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, ExceptionCode>> + Send>>;

impl Service for MeterService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Answer;

    fn call(&self, req: Self::Request) -> Self::Future {
        match self.control.get() {
            Behaviour::Normal => Box::pin(std::future::ready(self.answer(req))),
            Behaviour::Exception(code) => Box::pin(std::future::ready(Err(exception(code)))),
            // Never answers; the connection is dropped when the client gives
            // up or the server stops.
            Behaviour::Silent | Behaviour::Absent => Box::pin(std::future::pending()),
        }
    }
}

/// Serves `units` on `listener`'s address until `shutdown`, following
/// `control`: while [`Behaviour::Absent`] the port is closed (connections
/// are refused) and open connections are dropped; on return it listens on
/// the same address again.
pub async fn serve(
    listener: TcpListener,
    units: Units,
    control: Control,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let mut listener = Some(listener);
    let mut changes = control.subscribe();
    loop {
        if control.get() == Behaviour::Absent {
            listener = None;
            info!("meter simulator on {local} is gone");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = changes.wait_for(|b| *b != Behaviour::Absent) => {
                    if r.is_err() { return Ok(()); }
                }
            }
            info!("meter simulator on {local} is back");
        }
        let l = match listener.take() {
            Some(l) => l,
            None => TcpListener::bind(local).await?,
        };
        let units = units.clone();
        let ctl = control.clone();
        let new_service = move |peer: SocketAddr| -> io::Result<Option<MeterService>> {
            debug!(%peer, "Modbus client connected to the meter simulator on {local}");
            ctl.connections.fetch_add(1, Ordering::Relaxed);
            Ok(Some(MeterService::new(units.clone(), ctl.clone())))
        };
        let on_connected = |stream: TcpStream, peer: SocketAddr| {
            std::future::ready(accept_tcp_connection(stream, peer, &new_service))
        };
        let on_error =
            move |e: io::Error| debug!("a client of the meter on {local} went away: {e}");
        let mut absent = control.subscribe();
        let stop = shutdown.clone();
        let until = async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = absent.wait_for(|b| *b == Behaviour::Absent) => {}
            }
        };
        // Ending serve_until drops every connection task with it.
        Server::new(l)
            .serve_until(&on_connected, on_error, until)
            .await?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
    }
}

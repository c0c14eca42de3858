//! Modbus TCP: one connection per host and port, shared by every device
//! (unit id) behind it, opened on first use and reopened after a failure.
//!
//! A TCP-to-RS-485 gateway or a meter cabinet often puts many units behind
//! one address, and many such boxes accept only one or two connections: a
//! connection per device would be refused or starve its neighbours. So
//! devices at one `host:port` share a [`TcpLink`]; their requests take turns
//! on it (a fair, first-come lock), each addressed to its own unit id.
//!
//! Every step (name lookup, connect, each request) is bounded by the
//! timeout, so a silent device costs one timeout per request and never
//! stalls the others for longer. After a timeout the connection is dropped:
//! a late response would otherwise be taken as the answer to the next
//! request. After a failed connect the link waits (a backoff from 0.5 s up
//! to 30 s) before trying again, so ten devices behind a dead box cost one
//! connection attempt, not ten.

use super::{io_reason, BusError, ReadRequest, RegisterReader};
use crate::net::{words, Backoff};
use crate::profile::Function;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::{timeout, Instant};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

/// First wait after a failed connect; doubles up to [`CONNECT_RETRY_MAX`].
pub const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between connection attempts to one address.
pub const CONNECT_RETRY_MAX: Duration = Duration::from_secs(30);

/// The connection to one `host:port`, shared by the devices behind it.
#[derive(Clone)]
pub struct TcpLink {
    address: String,
    state: Arc<Mutex<LinkState>>,
}

struct LinkState {
    host: String,
    port: u16,
    ctx: Option<Context>,
    backoff: Backoff,
    /// After a failed connect: no new attempt before this, and why.
    retry_at: Option<(Instant, String)>,
}

impl std::fmt::Debug for TcpLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpLink")
            .field("address", &self.address)
            .finish()
    }
}

impl TcpLink {
    /// A link to `host:port`; nothing is opened yet.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        Self {
            address: format!("{host}:{port}"),
            state: Arc::new(Mutex::new(LinkState {
                host,
                port,
                ctx: None,
                backoff: Backoff::new(CONNECT_RETRY_FIRST, CONNECT_RETRY_MAX),
                retry_at: None,
            })),
        }
    }

    /// `host:port`, for log lines.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether a connection is open now.
    pub async fn is_connected(&self) -> bool {
        self.state.lock().await.ctx.is_some()
    }

    /// Closes the connection, if open (best effort: the device may be gone).
    pub async fn close(&self, limit: Duration) {
        let mut state = self.state.lock().await;
        if let Some(mut ctx) = state.ctx.take() {
            let _ = timeout(limit, ctx.disconnect()).await;
        }
    }

    /// One read for `unit`, on the shared connection.
    async fn read(
        &self,
        unit: u8,
        request: ReadRequest,
        limit: Duration,
    ) -> Result<Vec<u16>, BusError> {
        let mut state = self.state.lock().await;
        let had_connection = state.ctx.is_some();
        match state.read_once(unit, request, limit).await {
            // Devices and NAT boxes close idle connections; one fresh attempt
            // tells that apart from a device that is really gone.
            Err(BusError::Unreachable(_)) if had_connection => {
                state.read_once(unit, request, limit).await
            }
            other => other,
        }
    }
}

/// Keeps one [`TcpLink`] per address, so devices configured with the same
/// `host:port` share it.
#[derive(Debug, Default)]
pub struct TcpLinks(HashMap<(String, u16), TcpLink>);

impl TcpLinks {
    /// The link to `host:port`, created on first request.
    pub fn get(&mut self, host: &str, port: u16) -> TcpLink {
        self.0
            .entry((host.to_owned(), port))
            .or_insert_with(|| TcpLink::new(host, port))
            .clone()
    }

    /// Number of distinct addresses.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no link was made.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl LinkState {
    async fn connection(&mut self, limit: Duration) -> Result<&mut Context, BusError> {
        if self.ctx.is_none() {
            if let Some((at, why)) = &self.retry_at {
                let now = Instant::now();
                if now < *at {
                    return Err(BusError::Unreachable(format!(
                        "{why}; next connection attempt in {}",
                        words(*at - now)
                    )));
                }
            }
            match connect(&self.host, self.port, limit).await {
                Ok(ctx) => {
                    self.backoff.reset();
                    self.retry_at = None;
                    self.ctx = Some(ctx);
                }
                Err(e) => {
                    let wait = self.backoff.next_delay();
                    self.retry_at = Some((Instant::now() + wait, e.to_string()));
                    return Err(e);
                }
            }
        }
        self.ctx
            .as_mut()
            .ok_or_else(|| BusError::Unreachable("not connected".into()))
    }

    /// One attempt on the current connection (opening it if needed).
    async fn read_once(
        &mut self,
        unit: u8,
        request: ReadRequest,
        limit: Duration,
    ) -> Result<Vec<u16>, BusError> {
        let ctx = self.connection(limit).await?;
        ctx.set_slave(Slave(unit));
        let call = async {
            match request.function {
                Function::Holding => {
                    ctx.read_holding_registers(request.start, request.count)
                        .await
                }
                Function::Input => ctx.read_input_registers(request.start, request.count).await,
                Function::Coils => bits(ctx.read_coils(request.start, request.count).await),
                Function::DiscreteInputs => {
                    bits(ctx.read_discrete_inputs(request.start, request.count).await)
                }
            }
        };
        let outcome = match timeout(limit, call).await {
            Err(_) => Err(no_answer(&request.to_string(), limit)),
            Ok(Err(tokio_modbus::Error::Transport(e))) => Err(BusError::Unreachable(format!(
                "connection lost ({})",
                io_reason(&e)
            ))),
            Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(BusError::Unreachable(format!(
                "malformed response to {request}: {e}"
            ))),
            Ok(Ok(Err(code))) => return Err(BusError::Exception { code: code.into() }),
            Ok(Ok(Ok(words))) if words.len() < usize::from(request.count) => {
                Err(BusError::Unreachable(format!(
                    "asked for {request} and got {} words instead of {}",
                    words.len(),
                    request.count
                )))
            }
            Ok(Ok(Ok(mut words))) => {
                // Bit reads come back padded to whole bytes.
                words.truncate(usize::from(request.count));
                return Ok(words);
            }
        };
        // Any failure but an exception leaves the stream in an unknown state.
        self.ctx = None;
        outcome
    }
}

/// One device (unit id) behind a [`TcpLink`].
pub struct ModbusTcpBus {
    link: TcpLink,
    host: String,
    port: u16,
    unit_id: u8,
    timeout: Duration,
}

impl std::fmt::Debug for ModbusTcpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusTcpBus")
            .field("address", &self.address())
            .field("unit_id", &self.unit_id)
            .finish()
    }
}

impl ModbusTcpBus {
    /// A device at `host:port` with its own link (commands, tests, tools).
    pub fn new(host: impl Into<String>, port: u16, unit_id: u8, timeout: Duration) -> Self {
        let host = host.into();
        let link = TcpLink::new(host.clone(), port);
        Self::on(link, host, port, unit_id, timeout)
    }

    /// A device `unit_id` on a shared `link` to `host:port`.
    pub fn on(
        link: TcpLink,
        host: impl Into<String>,
        port: u16,
        unit_id: u8,
        timeout: Duration,
    ) -> Self {
        Self {
            link,
            host: host.into(),
            port,
            unit_id,
            timeout,
        }
    }

    /// `host:port`, for log lines.
    pub fn address(&self) -> String {
        self.link.address().to_owned()
    }

    /// Closes the shared connection, if open (at shutdown).
    pub async fn close(&mut self) {
        self.link.close(self.timeout).await;
    }

    /// Writes one coil (FC 0x05) on a fresh connection, then closes it:
    /// commands are rare and must not disturb the poller's connection.
    pub async fn write_coil(&mut self, address: u16, on: bool) -> Result<(), BusError> {
        let mut ctx = connect(&self.host, self.port, self.timeout).await?;
        ctx.set_slave(Slave(self.unit_id));
        let result = timeout(self.timeout, ctx.write_single_coil(address, on)).await;
        let _ = timeout(self.timeout, ctx.disconnect()).await;
        match result {
            Err(_) => Err(no_answer(&format!("writing coil {address}"), self.timeout)),
            Ok(Err(e)) => Err(BusError::Unreachable(format!(
                "writing coil {address} failed: {e}"
            ))),
            Ok(Ok(Err(code))) => Err(BusError::Exception { code: code.into() }),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }

    /// Writes one holding register (FC 0x06), like [`Self::write_coil`].
    pub async fn write_register(&mut self, address: u16, value: u16) -> Result<(), BusError> {
        let mut ctx = connect(&self.host, self.port, self.timeout).await?;
        ctx.set_slave(Slave(self.unit_id));
        let result = timeout(self.timeout, ctx.write_single_register(address, value)).await;
        let _ = timeout(self.timeout, ctx.disconnect()).await;
        match result {
            Err(_) => Err(no_answer(
                &format!("writing register {address}"),
                self.timeout,
            )),
            Ok(Err(e)) => Err(BusError::Unreachable(format!(
                "writing register {address} failed: {e}"
            ))),
            Ok(Ok(Err(code))) => Err(BusError::Exception { code: code.into() }),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

impl RegisterReader for ModbusTcpBus {
    async fn read(&mut self, request: ReadRequest) -> Result<Vec<u16>, BusError> {
        self.link.read(self.unit_id, request, self.timeout).await
    }
}

/// Bits as the 0/1 words the register image keeps. Responses are padded
/// to whole bytes; the caller's length check sees the count asked for.
fn bits(r: tokio_modbus::Result<Vec<bool>>) -> tokio_modbus::Result<Vec<u16>> {
    r.map(|inner| inner.map(|v| v.into_iter().map(u16::from).collect()))
}

fn no_answer(step: &str, limit: Duration) -> BusError {
    BusError::Unreachable(format!(
        "{step} got no answer within {} ms",
        limit.as_millis()
    ))
}

/// Resolves `host` and opens a connection; each request then names its unit.
async fn connect(host: &str, port: u16, limit: Duration) -> Result<Context, BusError> {
    let addr: SocketAddr = match timeout(limit, tokio::net::lookup_host((host, port))).await {
        Err(_) => return Err(no_answer("name lookup", limit)),
        Ok(Err(e)) => {
            return Err(BusError::Unreachable(format!(
                "cannot resolve {host}: {}",
                io_reason(&e)
            )))
        }
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| BusError::Unreachable(format!("{host} resolves to no address")))?,
    };
    match timeout(limit, tcp::connect(addr)).await {
        Err(_) => Err(no_answer("connect", limit)),
        Ok(Err(e)) => Err(BusError::Unreachable(io_reason(&e))),
        Ok(Ok(ctx)) => Ok(ctx),
    }
}

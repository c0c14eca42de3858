//! Modbus TCP: one connection per device, opened on first use and reopened
//! after any transport failure.
//!
//! Every step (name lookup, connect, each request) is bounded by the
//! device's `timeout_ms`, so a silent device costs one timeout per poll and
//! never stalls the poller. After a timeout the connection is dropped: a late
//! response would otherwise be taken as the answer to the next request.

use super::{io_reason, BusError, ReadRequest, RegisterReader};
use crate::profile::Function;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

/// A Modbus TCP device (or a TCP-to-RTU gateway and the unit behind it).
pub struct ModbusTcpBus {
    host: String,
    port: u16,
    unit_id: u8,
    timeout: Duration,
    ctx: Option<Context>,
}

impl std::fmt::Debug for ModbusTcpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModbusTcpBus")
            .field("address", &self.address())
            .field("unit_id", &self.unit_id)
            .field("connected", &self.ctx.is_some())
            .finish()
    }
}

impl ModbusTcpBus {
    /// A bus to `host:port`, addressing `unit_id`; nothing is opened yet.
    pub fn new(host: impl Into<String>, port: u16, unit_id: u8, timeout: Duration) -> Self {
        Self {
            host: host.into(),
            port,
            unit_id,
            timeout,
            ctx: None,
        }
    }

    /// `host:port`, for log lines.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Closes the connection, if open (best effort: the device may be gone).
    pub async fn close(&mut self) {
        if let Some(mut ctx) = self.ctx.take() {
            let _ = timeout(self.timeout, ctx.disconnect()).await;
        }
    }

    /// Writes one coil (FC 0x05) on a fresh connection, then closes it:
    /// commands are rare and must not disturb the poller's connection.
    pub async fn write_coil(&mut self, address: u16, on: bool) -> Result<(), BusError> {
        let mut ctx = connect(&self.host, self.port, self.unit_id, self.timeout).await?;
        let result = timeout(self.timeout, ctx.write_single_coil(address, on)).await;
        let _ = timeout(self.timeout, ctx.disconnect()).await;
        match result {
            Err(_) => Err(self.no_answer(&format!("writing coil {address}"))),
            Ok(Err(e)) => Err(BusError::Unreachable(format!(
                "writing coil {address} failed: {e}"
            ))),
            Ok(Ok(Err(code))) => Err(BusError::Exception { code: code.into() }),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }

    /// Writes one holding register (FC 0x06), like [`Self::write_coil`].
    pub async fn write_register(&mut self, address: u16, value: u16) -> Result<(), BusError> {
        let mut ctx = connect(&self.host, self.port, self.unit_id, self.timeout).await?;
        let result = timeout(self.timeout, ctx.write_single_register(address, value)).await;
        let _ = timeout(self.timeout, ctx.disconnect()).await;
        match result {
            Err(_) => Err(self.no_answer(&format!("writing register {address}"))),
            Ok(Err(e)) => Err(BusError::Unreachable(format!(
                "writing register {address} failed: {e}"
            ))),
            Ok(Ok(Err(code))) => Err(BusError::Exception { code: code.into() }),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }

    fn no_answer(&self, step: &str) -> BusError {
        no_answer(step, self.timeout)
    }

    /// One attempt on the current connection (opening it if needed).
    async fn read_once(&mut self, request: ReadRequest) -> Result<Vec<u16>, BusError> {
        let ctx = match self.ctx.take() {
            Some(ctx) => ctx,
            None => connect(&self.host, self.port, self.unit_id, self.timeout).await?,
        };
        let ctx = self.ctx.insert(ctx);
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
        let result = timeout(self.timeout, call).await;
        let outcome = match result {
            Err(_) => Err(self.no_answer(&request.to_string())),
            Ok(Err(tokio_modbus::Error::Transport(e))) => Err(BusError::Unreachable(format!(
                "connection lost ({})",
                io_reason(&e)
            ))),
            Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(BusError::Unreachable(format!(
                "malformed response to {request}: {e}"
            ))),
            Ok(Ok(Err(code))) => return Err(BusError::Exception { code: code.into() }),
            Ok(Ok(Ok(words))) if words.len() != usize::from(request.count) => {
                Err(BusError::Unreachable(format!(
                    "asked for {request} and got {} words instead of {}",
                    words.len(),
                    request.count
                )))
            }
            Ok(Ok(Ok(words))) => return Ok(words),
        };
        // Any failure but an exception leaves the stream in an unknown state.
        self.ctx = None;
        outcome
    }
}

impl RegisterReader for ModbusTcpBus {
    async fn read(&mut self, request: ReadRequest) -> Result<Vec<u16>, BusError> {
        let had_connection = self.ctx.is_some();
        match self.read_once(request).await {
            // Devices and NAT boxes close idle connections; one fresh attempt
            // tells that apart from a device that is really gone.
            Err(BusError::Unreachable(_)) if had_connection => self.read_once(request).await,
            other => other,
        }
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

/// Resolves `host` and opens a connection to `unit_id` behind it. A free
/// function: the bus holds a non-`Sync` context, so `&self` may not live
/// across an await in a `Send` future.
async fn connect(host: &str, port: u16, unit_id: u8, limit: Duration) -> Result<Context, BusError> {
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
    match timeout(limit, tcp::connect_slave(addr, Slave(unit_id))).await {
        Err(_) => Err(no_answer("connect", limit)),
        Ok(Err(e)) => Err(BusError::Unreachable(io_reason(&e))),
        Ok(Ok(ctx)) => Ok(ctx),
    }
}

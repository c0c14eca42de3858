//! The pile on the network: a Modbus TCP server in front of a [`SharedPile`].
//!
//! This is the thin I/O shell around [`PileModel`](super::PileModel): each
//! request locks the model, answers from it, and unlocks before anything is
//! awaited. tokio-modbus does the framing.

use std::future::{self, Ready};
use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::registers::RegisterError;
use super::SharedPile;

impl From<RegisterError> for ExceptionCode {
    fn from(err: RegisterError) -> Self {
        match err {
            RegisterError::IllegalDataAddress { .. } => ExceptionCode::IllegalDataAddress,
            RegisterError::IllegalDataValue { .. } => ExceptionCode::IllegalDataValue,
            RegisterError::Refused { .. } => ExceptionCode::ServerDeviceFailure,
            RegisterError::IllegalFunction => ExceptionCode::IllegalFunction,
        }
    }
}

/// Answers one client connection's requests from the shared pile.
#[derive(Debug, Clone)]
pub struct PileService {
    pile: SharedPile,
    unit_id: u8,
    peer: SocketAddr,
}

impl PileService {
    /// A service for requests from `peer`, answering unit `unit_id` (and
    /// the TCP "this device" ids 0 and 255).
    pub fn new(pile: SharedPile, unit_id: u8, peer: SocketAddr) -> Self {
        Self {
            pile,
            unit_id,
            peer,
        }
    }

    fn answer(&self, req: SlaveRequest<'static>) -> Result<Response, ExceptionCode> {
        let unit = req.slave;
        if unit != self.unit_id && unit != 0 && unit != 255 {
            debug!(peer = %self.peer, unit, "request for unit {unit}, but this pile is unit {}", self.unit_id);
            return Err(ExceptionCode::GatewayTargetDevice);
        }
        let peer = self.peer;
        match req.request {
            Request::ReadHoldingRegisters(addr, count) => Ok(Response::ReadHoldingRegisters(
                self.pile.with(|p| p.read_holding(addr, count))?,
            )),
            Request::ReadCoils(addr, count) => Ok(Response::ReadCoils(
                self.pile.with(|p| p.read_coils(addr, count))?,
            )),
            Request::WriteSingleCoil(addr, on) => {
                self.pile.with(|p| p.write_coil(addr, on))?;
                info!(%peer, "relay coil {addr} switched {} by Modbus client", on_off(on));
                Ok(Response::WriteSingleCoil(addr, on))
            }
            Request::WriteMultipleCoils(addr, values) => {
                self.pile.with(|p| p.write_coils(addr, &values))?;
                info!(%peer, "{} relay coils from {addr} written by Modbus client: {values:?}", values.len());
                // write_coils refused more than MAX_WRITE_COILS, so this fits.
                let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
                Ok(Response::WriteMultipleCoils(addr, count))
            }
            Request::WriteSingleRegister(addr, value) => {
                self.pile.with(|p| p.write_registers(addr, &[value]))?;
                info!(%peer, "register {addr} set to {value} by Modbus client");
                Ok(Response::WriteSingleRegister(addr, value))
            }
            Request::WriteMultipleRegisters(addr, values) => {
                self.pile.with(|p| p.write_registers(addr, &values))?;
                info!(%peer, "{} registers from {addr} written by Modbus client: {values:?}", values.len());
                // write_registers refused more than MAX_WRITE_REGISTERS, so this fits.
                let count = u16::try_from(values.len()).unwrap_or(u16::MAX);
                Ok(Response::WriteMultipleRegisters(addr, count))
            }
            other => {
                debug!(%peer, "function {} is not supported by the pile", other.function_code());
                Err(ExceptionCode::IllegalFunction)
            }
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

impl Service for PileService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        future::ready(self.answer(req))
    }
}

/// Serves `pile` over Modbus TCP on `listener` until `shutdown` is
/// cancelled, then closes every connection and returns `Ok(())`.
///
/// The caller binds the listener (port 0 in tests) so it knows the address
/// before the first client connects. Returns an error only if accepting a
/// connection fails.
pub async fn serve(
    listener: TcpListener,
    pile: SharedPile,
    unit_id: u8,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    info!("charging pile simulator answers Modbus TCP on {local} as unit {unit_id}");
    let new_service = move |peer: SocketAddr| -> io::Result<Option<PileService>> {
        debug!(%peer, "Modbus client connected to the pile on {local}");
        Ok(Some(PileService::new(pile.clone(), unit_id, peer)))
    };
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        future::ready(accept_tcp_connection(stream, peer, &new_service))
    };
    let on_process_error = move |err: io::Error| {
        debug!("a Modbus client of the pile on {local} went away: {err}");
    };
    Server::new(listener)
        .serve_until(&on_connected, on_process_error, shutdown.cancelled_owned())
        .await?;
    info!("charging pile simulator on {local} stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gridwatch_firmware::pile_map::{self, SocketState};
    use tokio::task::JoinHandle;
    use tokio_modbus::client::{tcp, Context};
    use tokio_modbus::prelude::{Reader, Writer};

    use super::*;
    use crate::pile::{ChargerKind, PileConfig, PileModel};

    struct Running {
        pile: SharedPile,
        client: Context,
        shutdown: CancellationToken,
        server: JoinHandle<io::Result<()>>,
    }

    async fn start() -> Running {
        let mut model = PileModel::new(PileConfig {
            sockets: 4,
            ..PileConfig::default()
        })
        .expect("valid config");
        model.plug_in(3, ChargerKind::Lithium).expect("free socket");
        model.step(20 * 60_000);
        let pile = SharedPile::new(model);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, pile.clone(), 1, shutdown.clone()));
        let client = tcp::connect(addr).await.expect("connects");
        Running {
            pile,
            client,
            shutdown,
            server,
        }
    }

    async fn stop(r: Running) {
        r.shutdown.cancel();
        let done = tokio::time::timeout(Duration::from_secs(5), r.server)
            .await
            .expect("server stops when cancelled")
            .expect("server task did not panic");
        assert!(done.is_ok());
    }

    #[tokio::test]
    async fn client_reads_the_values_the_model_holds() {
        let mut r = start().await;
        let base = pile_map::socket_base(3).expect("mapped");
        let words = r
            .client
            .read_holding_registers(base, pile_map::SOCKET_BLOCK_LEN)
            .await
            .expect("transport ok")
            .expect("no exception");
        let got = pile_map::decode_socket_registers(&words).expect("decodes");
        let want = r.pile.with(|p| p.socket(3)).expect("socket 3");
        assert_eq!(got.state, SocketState::Charging);
        assert!(
            (got.power_w - want.power_w).abs() <= 0.05,
            "{got:?} vs {want:?}"
        );
        assert!((got.current_a - want.current_a).abs() <= 0.0005);
        assert!((got.temperature_c - want.temperature_c).abs() <= 0.05);
        assert!((got.energy_wh - want.energy_wh).abs() <= 0.05);
        assert_eq!(got.session_s, 1200);

        let head = r
            .client
            .read_holding_registers(0, 5)
            .await
            .expect("transport ok");
        let pile_block =
            pile_map::decode_pile_registers(&head.expect("no exception")).expect("decodes");
        assert_eq!(pile_block.socket_count, 4);
        stop(r).await;
    }

    #[tokio::test]
    async fn illegal_address_is_an_exception_and_the_link_survives() {
        let mut r = start().await;
        let gap = r
            .client
            .read_holding_registers(50, 2)
            .await
            .expect("transport ok");
        assert_eq!(gap, Err(ExceptionCode::IllegalDataAddress));
        let past = r
            .client
            .read_holding_registers(180, 1)
            .await
            .expect("transport ok");
        assert_eq!(past, Err(ExceptionCode::IllegalDataAddress));
        let unsupported = r
            .client
            .read_input_registers(100, 1)
            .await
            .expect("transport ok");
        assert_eq!(unsupported, Err(ExceptionCode::IllegalFunction));
        let ok = r
            .client
            .read_holding_registers(100, 1)
            .await
            .expect("transport ok");
        assert_eq!(ok, Ok(vec![SocketState::Idle as u16]));
        stop(r).await;
    }

    #[tokio::test]
    async fn writing_a_relay_coil_switches_the_socket() {
        let mut r = start().await;
        let coil = pile_map::relay_coil(3).expect("mapped");
        let before = r.client.read_coils(0, 4).await.expect("transport ok");
        assert_eq!(before, Ok(vec![false, false, true, false]));
        r.client
            .write_single_coil(coil, false)
            .await
            .expect("transport ok")
            .expect("no exception");
        assert!(!r.pile.with(|p| p.relay(3)).expect("socket 3"));
        let power = pile_map::socket_register(3, pile_map::SOCKET_POWER).expect("mapped");
        let words = r
            .client
            .read_holding_registers(power, 2)
            .await
            .expect("transport ok");
        assert_eq!(words, Ok(vec![0, 0]));
        r.client
            .write_multiple_coils(0, &[true, true])
            .await
            .expect("transport ok")
            .expect("no exception");
        let past = r
            .client
            .write_single_coil(4, true)
            .await
            .expect("transport ok");
        assert_eq!(past, Err(ExceptionCode::IllegalDataAddress));
        let after = r.client.read_coils(0, 4).await.expect("transport ok");
        assert_eq!(after, Ok(vec![true, true, false, false]));
        stop(r).await;
    }
}

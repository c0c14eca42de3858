//! A meter cabinet on Modbus TCP: one building's flat meters of one kind
//! behind one address, by unit id, answering only while their recorded data
//! is fresh (a dead meter behind a TCP-to-RS-485 box answers 0x0B).

use super::*;

impl Service for CabinetService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ExceptionCode>> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let now = self.clock.get().map(|c| c.now().0);
        let fresh = self
            .meters
            .get(&req.slave)
            .is_some_and(|m| now.is_some_and(|now| now < m.fresh_until.load(Ordering::Relaxed)));
        let answer = if fresh {
            self.counters.answered.fetch_add(1, Ordering::Relaxed);
            self.inner.answer(req)
        } else {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            Err(ExceptionCode::GatewayTargetDevice)
        };
        Box::pin(std::future::ready(answer))
    }
}

pub(super) async fn serve_cabinet(
    listener: TcpListener,
    service: CabinetService,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let new_service = move |_peer: SocketAddr| -> std::io::Result<Option<CabinetService>> {
        Ok(Some(service.clone()))
    };
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        std::future::ready(accept_tcp_connection(stream, peer, &new_service))
    };
    let on_error = |e: std::io::Error| tracing::debug!("a meter cabinet client went away: {e}");
    Server::new(listener)
        .serve_until(&on_connected, on_error, shutdown.cancelled_owned())
        .await
        .context("serving a meter cabinet")?;
    Ok(())
}

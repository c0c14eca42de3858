//! A meter cabinet on Modbus TCP: one building's flat meters of one kind
//! behind one address, by unit id, answering only while their recorded data
//! is fresh (a dead meter behind a TCP-to-RS-485 box answers 0x0B).

use super::*;
use gridwatch_gateway::profile::Profile;

impl Installation {
    /// Starts the Modbus TCP cabinet of meter kind `k` (index of
    /// [`METERS`]) in building `b`, its meters reporting every
    /// `interval_ms`; returns where the gateway finds it.
    pub(super) async fn cabinet(
        &mut self,
        b: &Building,
        k: usize,
        profile: &Arc<Profile>,
        interval_ms: i64,
    ) -> anyhow::Result<Wiring> {
        let prefix = METERS[k].0;
        let names: Arc<Vec<String>> =
            Arc::new(profile.registers.iter().map(|r| r.name.clone()).collect());
        let mut units = BTreeMap::new();
        let mut live = BTreeMap::new();
        for (i, unit) in b.flats.iter().enumerate() {
            let id = u8::try_from(i + 1).context("unit id")?;
            let meter = SharedMeter::new(MeterModel::new(profile.clone(), i as u64));
            let m = LiveMeter {
                registers: Registers::Modbus(meter.clone()),
                fresh_until: Arc::new(AtomicI64::new(i64::MIN)),
                interval_ms,
                names: names.clone(),
            };
            units.insert(id, meter);
            self.meters.insert(
                (
                    format!("gw-{}-{}", b.site, b.id),
                    format!("{prefix}-{unit}"),
                ),
                m.clone(),
            );
            live.insert(id, m);
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a meter cabinet's Modbus TCP port on 127.0.0.1")?;
        let at = listener.local_addr()?;
        let service = CabinetService {
            inner: MeterService::new(
                Arc::new(units),
                crate::meter::Control::new(Default::default()),
            ),
            meters: Arc::new(live),
            clock: self.clock.clone(),
            counters: self.counters.clone(),
        };
        self.tasks.push((
            format!("{prefix} cabinet of {}/{}", b.site, b.id),
            tokio::spawn(serve_cabinet(listener, service, self.shutdown.clone())),
        ));
        Ok(Wiring::Cabinet(at))
    }
}

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

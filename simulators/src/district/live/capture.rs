//! What came back: the readings the gateways published, counted per
//! building for the progress line and, with `--capture`, written as a
//! recording `gridwatch-analytics evaluate` can score.

use super::*;

/// Subscribes to every reading on `broker` and counts them per building.
pub(super) async fn watch_readings(
    broker: SocketAddr,
    counters: Arc<Counters>,
    mut capture: Option<std::io::BufWriter<std::fs::File>>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let mut opts = rumqttc::MqttOptions::new(
        format!("gridwatch-live-watch-{}", std::process::id()),
        broker.ip().to_string(),
        broker.port(),
    );
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 1000);
    client
        .subscribe(Topics::default().all_readings(), rumqttc::QoS::AtMostOnce)
        .await
        .context("subscribing to the district's readings")?;
    // Wait for the subscription to be acknowledged, so no reading is missed.
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match acked {
        Ok(Ok(())) => {}
        Ok(Err(e)) => bail!("cannot watch readings on the broker {broker}: {e}"),
        Err(_) => bail!("the broker {broker} did not acknowledge a subscription within 10 s"),
    }
    Ok(tokio::spawn(async move {
        let _client = client;
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => {
                    if let Some(out) = capture.as_mut() {
                        out.flush().context("writing the capture")?;
                    }
                    return Ok(());
                }
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if let Ok(r) = codec::decode::<Reading>(&p.payload) {
                        counters.published.fetch_add(1, Ordering::Relaxed);
                        let key = format!(
                            "{}/{}",
                            r.site.as_str(),
                            r.building.as_deref().unwrap_or("-")
                        );
                        *counters
                            .by_building
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .entry(key)
                            .or_default() += 1;
                        if let Some(out) = capture.as_mut() {
                            serde_json::to_writer(&mut *out, &Record::Reading(r))
                                .map_err(anyhow::Error::from)
                                .and_then(|()| Ok(out.write_all(b"\n")?))
                                .context("writing the capture")?;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }))
}

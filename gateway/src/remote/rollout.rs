//! The decisions of a remote config change, as pure functions: may this
//! version be applied, may this config replace the running one, and did it
//! survive its grace period. The supervisor does the waiting and restarting.

use crate::config::GatewayConfig;
use crate::status::{DeviceFigures, UplinkFigures};
use std::collections::{BTreeMap, BTreeSet};

/// Refuses a version that is not newer than the one running (a replayed or
/// stale push).
pub fn admissible(version: u64, running: u64) -> Result<(), String> {
    if version <= running {
        return Err(format!(
            "version {version} is not newer than version {running}, which runs now; \
             sign the config with a higher --version"
        ));
    }
    Ok(())
}

/// Refuses a config that would cut the gateway off from its operator: a
/// different gateway id or site (its topics, and so its acks, would move)
/// or no `[remote]` table (nothing could be pushed again).
pub fn compatible(running: &GatewayConfig, new: &GatewayConfig) -> Result<(), String> {
    if new.gateway.id != running.gateway.id || new.gateway.site != running.gateway.site {
        return Err(format!(
            "it is for gateway {}/{}, and this is {}/{}; a pushed config keeps the gateway's \
             identity (provision a new gateway instead)",
            new.gateway.site.as_str(),
            new.gateway.id.as_str(),
            running.gateway.site.as_str(),
            running.gateway.id.as_str()
        ));
    }
    if new.remote.is_none() {
        return Err(
            "it has no [remote] table, so no config could be pushed after it; \
             keep [remote] in pushed configs"
                .into(),
        );
    }
    if let (Some(r), Some(slowest)) = (
        &new.remote,
        new.devices.iter().max_by_key(|d| d.poll_interval_ms),
    ) {
        if r.grace_period_s.saturating_mul(1000) <= slowest.poll_interval_ms {
            return Err(format!(
                "its grace period ({} s) is not longer than {}'s poll interval ({} ms), so \
                 that device could not answer before the config is judged; raise \
                 [remote] grace_period_s",
                r.grace_period_s,
                slowest.id.as_str(),
                slowest.poll_interval_ms
            ));
        }
    }
    if new.mqtt.topic_prefix != running.mqtt.topic_prefix {
        return Err(format!(
            "it moves the topic prefix from {:?} to {:?}, where no ack would be seen",
            running.mqtt.topic_prefix, new.mqtt.topic_prefix
        ));
    }
    Ok(())
}

/// What a config on trial is judged against: its devices, and those of
/// them that already failed under the previous config (a meter that was
/// dead before is not the new config's fault).
#[derive(Debug, Clone, Default)]
pub struct Expectation {
    /// Device ids of the config on trial.
    pub devices: Vec<String>,
    /// Device ids that were configured before and were not answering then.
    pub silent_before: BTreeSet<String>,
    /// Uplinks that must be up at the end (the MQTT uplink: connected).
    pub uplinks: Vec<&'static str>,
    /// Uplinks that must not be failing at the end, but may not have
    /// reported yet (InfluxDB reports once it has written).
    pub uplinks_if_reported: Vec<&'static str>,
}

impl Expectation {
    /// What `new` must show, given the figures of the run it replaces;
    /// the uplink lists are left for the caller, who knows their names.
    pub fn for_trial(new: &GatewayConfig, before: &BTreeMap<String, DeviceFigures>) -> Self {
        Self {
            devices: new
                .devices
                .iter()
                .map(|d| d.id.as_str().to_owned())
                .collect(),
            silent_before: before
                .iter()
                .filter(|(_, f)| !f.online)
                .map(|(id, _)| id.clone())
                .collect(),
            uplinks: Vec::new(),
            uplinks_if_reported: Vec::new(),
        }
    }
}

/// The judgement at the end of the grace period: `Ok` if the config
/// survived, otherwise every reason it did not, in words.
pub fn judge(
    expect: &Expectation,
    devices: &BTreeMap<String, DeviceFigures>,
    uplinks: &BTreeMap<&'static str, UplinkFigures>,
) -> Result<(), Vec<String>> {
    let mut failed = Vec::new();
    for id in &expect.devices {
        if expect.silent_before.contains(id) {
            continue;
        }
        match devices.get(id) {
            Some(f) if f.online => {}
            Some(f) if f.answered => failed.push(format!(
                "{id} answered, then stopped ({} of {} polls unanswered)",
                f.unanswered, f.polls
            )),
            Some(f) => failed.push(format!("{id} did not answer any of {} polls", f.polls)),
            None => failed.push(format!("{id} was not polled")),
        }
    }
    let all = expect.uplinks.iter().map(|n| (n, true));
    let reported = expect.uplinks_if_reported.iter().map(|n| (n, false));
    for (&name, must_report) in all.chain(reported) {
        match uplinks.get(name) {
            Some(u) if u.up => {}
            None if !must_report => {}
            Some(u) => failed.push(format!(
                "the {name} uplink is down ({} failures)",
                u.failures
            )),
            None => failed.push(format!("the {name} uplink never connected")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(answered: bool, online: bool) -> DeviceFigures {
        DeviceFigures {
            polls: 4,
            unanswered: if online { 0 } else { 4 },
            answered,
            online,
            ..DeviceFigures::default()
        }
    }

    fn mqtt_up() -> BTreeMap<&'static str, UplinkFigures> {
        [(
            "mqtt",
            UplinkFigures {
                up: true,
                ever_up: true,
                failures: 0,
            },
        )]
        .into()
    }

    #[test]
    fn only_newer_versions_are_admissible() {
        assert!(admissible(3, 2).is_ok());
        assert!(admissible(2, 2).unwrap_err().contains("not newer"));
        assert!(admissible(1, 2).is_err());
    }

    #[test]
    fn a_grace_period_shorter_than_a_poll_interval_is_refused() {
        let text = |grace: u32, poll: u32| {
            format!(
                "[gateway]\nid = \"gw\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n\
                 [remote]\npublic_key_file = \"/k\"\ndir = \"/d\"\ngrace_period_s = {grace}\n\
                 [[devices]]\nid = \"slow\"\nprofile = \"eastron-sdm120\"\n\
                 protocol = \"modbus_tcp\"\nhost = \"127.0.0.1\"\npoll_interval_ms = {poll}\n"
            )
        };
        let load = |t: String| GatewayConfig::from_toml_str(&t, "t").unwrap();
        let running = load(text(60, 1000));
        assert!(compatible(&running, &load(text(60, 30_000))).is_ok());
        let why = compatible(&running, &load(text(60, 60_000))).unwrap_err();
        assert!(why.contains("slow's poll interval (60000 ms)"), "{why}");
    }

    #[test]
    fn a_device_that_never_answers_fails_the_trial() {
        let expect = Expectation {
            devices: vec!["pile-1".into(), "meter-3".into()],
            uplinks: vec!["mqtt"],
            ..Expectation::default()
        };
        let devices = [
            ("pile-1".to_owned(), figures(true, true)),
            ("meter-3".to_owned(), figures(false, false)),
        ]
        .into();
        let why = judge(&expect, &devices, &mqtt_up()).unwrap_err();
        assert_eq!(
            why,
            vec!["meter-3 did not answer any of 4 polls".to_owned()]
        );
    }

    #[test]
    fn a_device_dead_before_the_change_does_not_fail_it() {
        let expect = Expectation {
            devices: vec!["meter-3".into()],
            silent_before: ["meter-3".to_owned()].into(),
            uplinks: vec!["mqtt"],
            ..Expectation::default()
        };
        let devices = [("meter-3".to_owned(), figures(false, false))].into();
        assert!(judge(&expect, &devices, &mqtt_up()).is_ok());
    }

    #[test]
    fn a_broker_that_refuses_fails_the_trial_and_influx_silence_does_not() {
        let expect = Expectation {
            devices: vec![],
            uplinks: vec!["mqtt"],
            uplinks_if_reported: vec!["influx"],
            ..Expectation::default()
        };
        let down: BTreeMap<_, _> = [(
            "mqtt",
            UplinkFigures {
                up: false,
                ever_up: false,
                failures: 3,
            },
        )]
        .into();
        assert_eq!(
            judge(&expect, &BTreeMap::new(), &down).unwrap_err(),
            vec!["the mqtt uplink is down (3 failures)".to_owned()]
        );
        assert!(judge(&expect, &BTreeMap::new(), &mqtt_up()).is_ok());
    }
}

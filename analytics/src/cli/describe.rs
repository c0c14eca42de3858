//! `check`'s description of a config: what each detector and the case
//! handling will do, in one line each, for the person deploying it.

use crate::config::AnalyticsConfig;

/// What a config will do, in a few lines for the person who wrote it.
pub fn describe(c: &AnalyticsConfig) -> String {
    let m = &c.mqtt;
    let s = &c.detect.socket_safety;
    let mut out = format!(
        "  broker    {} as {} ({} session), readings from {}/+/+/reading/+\n",
        m.broker(),
        m.client_id,
        if m.clean_session {
            "clean"
        } else {
            "persistent"
        },
        m.topic_prefix
    );
    out += &format!(
        "  cells     {} site(s) mapped, others go to {:?}\n",
        c.cells.sites.len(),
        c.cells.default
    );
    if s.enabled {
        out += &format!(
            "  sockets   overcurrent > {} A or overpower > {} W for {} s; over-temperature > {} °C for {} s \
             rising > {} °C/min (or > {} °C whatever the rise); clear below × {} for {} s; gap {} s\n",
            s.overcurrent_a,
            s.overpower_w,
            s.persistence_s,
            s.overtemp_c,
            s.overtemp_persistence_s,
            s.overtemp_rise_c_per_min,
            s.overtemp_ceiling_c,
            s.clear_ratio,
            s.clear_s,
            s.max_gap_s
        );
    } else {
        out += "  sockets   socket_safety detector disabled\n";
    }
    let ic = &c.detect.indoor_charging;
    out += &if ic.enabled {
        format!(
            "  indoor    tag at {}; charger signature {}-{} W held {} min, tapering, through the quiet hours, {} times in {} days\n",
            ic.indoor_locations.join("/"),
            ic.min_step_w,
            ic.max_step_w,
            ic.min_plateau_min,
            ic.min_sessions,
            ic.session_window_days
        )
    } else {
        "  indoor    indoor_charging detector disabled\n".to_owned()
    };
    let g = &c.detect.group_rental;
    out += &if g.enabled {
        format!(
            "  rentals   {} factors (robust z > {}, > {} x norm, CUSUM) scoring {} on {} of {} days, per registered occupant\n",
            g.min_factors,
            g.z_threshold,
            g.norm_ratio,
            g.min_score,
            g.persistence_days,
            g.persistence_days + 3
        )
    } else {
        "  rentals   group_rental detector disabled\n".to_owned()
    };
    out += &describe_handling(c);
    out
}

/// The store, directory, API and webhook lines of [`describe`].
fn describe_handling(c: &AnalyticsConfig) -> String {
    let a = &c.alerts.ack_within;
    let mut out = format!(
        "  alerts    escalate if not acknowledged within {} s (critical), {} s (major), {} s (minor); \
         cool-down {} s; re-check {} s after resolution\n",
        a.critical_s, a.major_s, a.minor_s, c.alerts.cooldown_s, c.alerts.recheck_after_s
    );
    out += &format!("  store     {}\n", c.store.describe());
    out += &match &c.directory.path {
        Some(p) => format!("  directory {}\n", p.display()),
        None => "  directory none: routing from [cells] only, no API users\n".to_owned(),
    };
    out += &match c.api.listen {
        Some(addr) => format!("  api       http://{addr}/ (dashboard) and /api/v1\n"),
        None => "  api       off\n".to_owned(),
    };
    if let Some(url) = &c.notify.webhook.url {
        out += &format!("  webhook   {url}\n");
    }
    if let Some(url) = &c.notify.wecom.url {
        out += &format!("  wecom     robot at {url} (key from its file)\n");
    }
    if let Some(url) = &c.notify.dingtalk.url {
        let signed = if c.notify.dingtalk.secret_file.is_some() {
            "signed"
        } else {
            "unsigned"
        };
        out += &format!("  dingtalk  robot at {url} ({signed}, token from its file)\n");
    }
    out
}

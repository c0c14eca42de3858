//! The Chinese text of the group-robot messages (WeCom, DingTalk): one
//! catalogue for what grid staff read on their phones, so that no wording
//! is scattered through the channels or the detectors.
//!
//! A message says which rule fired and how urgent it is (in Chinese, not
//! the rule's id), where (site, building, flat or socket), when in the
//! site's local time (its `time_zone` in the directory, else `[detect]
//! utc_offset_min`, +08:00 by default, with the zone shown and never a `Z`), what to do, and links to the case on the
//! dashboard (`[notify] dashboard_url`). It is built from the same JSON
//! notices as the webhook's, so every channel tells of the same cases.

use serde_json::Value;

/// What a message needs besides the notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextContext {
    /// Each site's zone (480 minutes east of UTC for China).
    pub zones: crate::i18n::zones::SiteZones,
    /// The dashboard's public address, e.g. `https://grid.example.org`;
    /// without it the message names the case number only.
    pub dashboard_url: Option<String>,
    /// The robot's limit on the markdown text, in bytes.
    pub max_bytes: usize,
}

/// A robot message: the title (DingTalk shows it in the notification) and
/// the markdown body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotMessage {
    /// One line, e.g. `【严重】插座过流`.
    pub title: String,
    /// Markdown that starts with the title as a heading.
    pub markdown: String,
}

/// The rule's name as grid staff say it.
pub fn rule_name(rule: &str) -> &'static str {
    match rule {
        "socket_overcurrent" => "插座过流",
        "socket_overpower" => "插座功率超限",
        "socket_overtemperature" | "socket_overtemperature_ceiling" => "插座温度过高",
        "socket_residual_current" => "插座漏电",
        "socket_nonstandard_charger" => "疑似非标充电器",
        "socket_live_after_full" => "充满后仍在通电",
        "socket_not_full_after" => "充电时间过长仍未充满",
        "socket_session_over_cap" => "单次充电超过时长上限",
        "socket_forced_stop_missed" => "到时未能强制断电",
        "socket_idle_live" => "空闲插座带电",
        "socket_bulk_stuck" => "充电电流异常不降",
        "socket_taper_reversal" => "充电曲线异常回升",
        "socket_abnormal_session_energy" => "单次充电电量异常",
        "pile_offline" => "充电桩离线",
        "night_water_leak" => "夜间持续用水（疑似漏水）",
        "group_rental" => "疑似群租",
        "indoor_sighting" => "发现电动车进楼入户",
        "indoor_charging_signature" => "疑似室内充电",
        "indoor_charging_fused" => "室内充电（多源确认）",
        "three_in_one" => "疑似“三合一”场所",
        "meter_no_data" => "表计无数据",
        "building_no_data" => "楼栋无数据",
        "meter_stuck" => "表计读数停滞",
        "meter_reversed" => "表计读数倒走",
        "clock_skew" => "网关时钟偏差",
        "alert_store_failed" => "告警存储故障",
        _ => "其他告警",
    }
}

/// The severity as a word, e.g. `严重` for `critical`.
pub fn severity_name(severity: &str) -> &'static str {
    match severity {
        "critical" => "严重",
        "major" => "重要",
        "minor" => "一般",
        _ => "未知",
    }
}

/// What the person on duty should do first.
pub fn what_to_do(rule: &str) -> &'static str {
    match rule {
        "socket_overcurrent"
        | "socket_overpower"
        | "socket_overtemperature"
        | "socket_overtemperature_ceiling"
        | "socket_residual_current" => {
            "请立即远程断开该插座或到场断电，检查插头、线缆和车辆，确认无起火隐患后再恢复供电。"
        }
        "socket_forced_stop_missed" | "socket_live_after_full" | "socket_idle_live" => {
            "请远程断开该插座；若断不开，请到场断电并检查继电器。"
        }
        "socket_nonstandard_charger"
        | "socket_bulk_stuck"
        | "socket_taper_reversal"
        | "socket_not_full_after"
        | "socket_session_over_cap"
        | "socket_abnormal_session_energy" => {
            "请当天到场查看充电器和电池，劝导使用原装或合格充电器。"
        }
        "pile_offline" => "请联系充电桩运维单位，检查充电桩供电和网络。",
        "night_water_leak" => "请联系住户或物业，检查屋内是否漏水、水龙头是否未关。",
        "group_rental" => "请安排入户核查实际居住人数，并登记核查结果。",
        "indoor_sighting" | "indoor_charging_signature" | "indoor_charging_fused" => {
            "请尽快上门劝导，禁止电动车进楼入户充电，并引导到集中充电点。"
        }
        "three_in_one" => "请安排检查，核实是否存在住人、生产、经营混合场所。",
        "meter_no_data" | "building_no_data" | "meter_stuck" | "meter_reversed" | "clock_skew" => {
            "请联系设备运维人员检查表计、网关和通信。"
        }
        _ => "请打开平台查看详情并处理。",
    }
}

/// Where, in words: the site and the rest of the entity, e.g. `yard-a 小区
/// b02 栋 0301 室` for `yard-a/b02/0301`, or the device and socket.
pub fn place(site: &str, entity: &str) -> String {
    let rest = entity
        .strip_prefix(site)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(entity);
    let mut out = format!("{site} 小区");
    if rest.is_empty() {
        return out;
    }
    let (path, socket) = match rest.split_once('#') {
        Some((p, s)) => (p, Some(s)),
        None => (rest, None),
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match (parts.as_slice(), socket) {
        ([building, flat], None) => out += &format!(" {building} 栋 {flat} 室"),
        (_, Some(s)) => out += &format!(" 设备 {} 第 {s} 号插座", parts.join("/")),
        _ => out += &format!(" {}", parts.join("/")),
    }
    out
}

/// `2026-12-06 10:16（UTC+08:00）`: local time with its zone, no `Z`.
pub fn local_time(ts: i64, utc_offset_min: i32) -> String {
    let ms = ts + i64::from(utc_offset_min) * 60_000;
    let (y, m, d) = gridwatch_telemetry::time::civil_from_days(ms.div_euclid(86_400_000));
    let minute = ms.rem_euclid(86_400_000) / 60_000;
    let sign = if utc_offset_min < 0 { '-' } else { '+' };
    let off = utc_offset_min.unsigned_abs();
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}（UTC{sign}{:02}:{:02}）",
        minute / 60,
        minute % 60,
        off / 60,
        off % 60
    )
}

/// The case's page on the dashboard, or its number without an address.
pub fn case_link(ctx: &TextContext, case_id: i64) -> String {
    match &ctx.dashboard_url {
        Some(base) => format!(
            "[查看并处理案件 #{case_id}]({}/alerts/{case_id})",
            base.trim_end_matches('/')
        ),
        None => format!("案件 #{case_id}（请在平台中查看）"),
    }
}

/// The message for a notice (raised, re-opened, recurrence, escalated, or
/// a group of them); `None` for a notice this catalogue does not know.
pub fn message(notice: &Value, ctx: &TextContext) -> Option<RobotMessage> {
    let event = notice["event"].as_str()?;
    let (title, body) = match event {
        "group" => group(notice, ctx)?,
        "escalated" => {
            let c = &notice["case"];
            let f = Fields::of(c, c["last_seen"].as_i64()?, notice["case_id"].as_i64()?)?;
            let level = notice["escalation_level"].as_i64().unwrap_or(1);
            let title = format!(
                "【升级·{}】{}",
                severity_name(f.severity),
                rule_name(f.rule)
            );
            let lead =
                format!("> 该告警未在规定时间内确认，已升级到第 {level} 级，请尽快处理。\n\n");
            (title, lead + &f.lines(ctx))
        }
        "raised" | "reopened" | "recurrence" => {
            let a = &notice["alert"];
            let f = Fields::of(a, a["ts"].as_i64()?, notice["case_id"].as_i64()?)?;
            let tag = match event {
                "reopened" => "（已重新打开）",
                "recurrence" => "（再次发生）",
                _ => "",
            };
            let title = format!(
                "【{}】{}{tag}",
                severity_name(f.severity),
                rule_name(f.rule)
            );
            (title, f.lines(ctx))
        }
        _ => return None,
    };
    let markdown = fit(format!("### {title}\n\n{body}"), ctx.max_bytes);
    Some(RobotMessage { title, markdown })
}

/// The fields of one alert or case that a message shows.
struct Fields<'a> {
    rule: &'a str,
    severity: &'a str,
    site: &'a str,
    entity: &'a str,
    ts: i64,
    case_id: i64,
}

impl<'a> Fields<'a> {
    fn of(v: &'a Value, ts: i64, case_id: i64) -> Option<Self> {
        Some(Self {
            rule: v["rule"].as_str()?,
            severity: v["severity"].as_str()?,
            site: v["site"].as_str()?,
            entity: v["entity"].as_str().unwrap_or(""),
            ts,
            case_id,
        })
    }

    fn lines(&self, ctx: &TextContext) -> String {
        format!(
            "**告警**：{}\n\n**级别**：{}\n\n**地点**：{}\n\n**时间**：{}\n\n**处置**：{}\n\n{}\n",
            rule_name(self.rule),
            severity_name(self.severity),
            place(self.site, self.entity),
            local_time(self.ts, ctx.zones.of(self.site)),
            what_to_do(self.rule),
            case_link(ctx, self.case_id),
        )
    }
}

fn group(notice: &Value, ctx: &TextContext) -> Option<(String, String)> {
    let items = notice["notices"].as_array()?;
    let key = notice["group"].as_str().unwrap_or("?");
    let title = format!("【新告警 {} 条】{key}", items.len());
    let mut body = String::new();
    for n in items {
        let a = &n["alert"];
        let Some(f) = Fields::of(a, a["ts"].as_i64().unwrap_or(0), n["case_id"].as_i64()?) else {
            continue;
        };
        body += &format!(
            "- 【{}】{}，{}，{}，{}\n",
            severity_name(f.severity),
            rule_name(f.rule),
            place(f.site, f.entity),
            local_time(f.ts, ctx.zones.of(f.site)),
            case_link(ctx, f.case_id)
        );
    }
    if let Some(d) = notice["dropped"].as_u64().filter(|d| *d > 0) {
        body += &format!("\n另有 {d} 条未列出，请在平台中查看。\n");
    }
    Some((title, body))
}

/// Cuts `text` to `max_bytes` at a line end, saying that it was cut.
fn fit(text: String, max_bytes: usize) -> String {
    const MORE: &str = "\n……内容过长，其余请在平台中查看。";
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes.saturating_sub(MORE.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').unwrap_or(end);
    format!("{}{MORE}", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> TextContext {
        TextContext {
            zones: crate::i18n::zones::SiteZones::uniform(480),
            dashboard_url: Some("https://grid.example.org/".into()),
            max_bytes: 4096,
        }
    }

    fn raised() -> Value {
        json!({"event": "raised", "case_id": 12, "alert": {
            "rule": "socket_overcurrent", "severity": "critical", "site": "yard-a",
            "entity": "yard-a/gw-01/pile-3#2", "ts": 1_795_216_080_000_i64}})
    }

    #[test]
    fn a_raised_alert_reads_in_chinese_with_local_time_and_link() {
        let m = message(&raised(), &ctx()).unwrap();
        assert_eq!(m.title, "【严重】插座过流");
        assert!(
            m.markdown.starts_with("### 【严重】插座过流\n"),
            "{}",
            m.markdown
        );
        assert!(m
            .markdown
            .contains("yard-a 小区 设备 gw-01/pile-3 第 2 号插座"));
        // 1795216080000 ms is 2026-11-20 23:08 UTC, 2026-11-21 07:08 in Beijing.
        assert!(
            m.markdown.contains("2026-11-21 07:08（UTC+08:00）"),
            "{}",
            m.markdown
        );
        assert!(!m.markdown.contains('Z'));
        assert!(m
            .markdown
            .contains("[查看并处理案件 #12](https://grid.example.org/alerts/12)"));
        assert!(m.markdown.contains("远程断开"));
    }

    #[test]
    fn a_site_with_its_own_zone_is_told_in_it() {
        let c = TextContext {
            zones: crate::i18n::zones::SiteZones::new(
                480,
                std::collections::HashMap::from([("yard-a".to_owned(), 360)]),
            ),
            ..ctx()
        };
        let m = message(&raised(), &c).unwrap();
        assert!(
            m.markdown.contains("2026-11-21 05:08（UTC+06:00）"),
            "{}",
            m.markdown
        );
    }

    #[test]
    fn flats_are_named_by_building_and_room() {
        assert_eq!(place("s01", "s01/b02/0301"), "s01 小区 b02 栋 0301 室");
        assert_eq!(place("s01", "s01"), "s01 小区");
        assert_eq!(place("s01", "s01/gw-2"), "s01 小区 gw-2");
    }

    #[test]
    fn negative_offsets_show_their_sign() {
        assert_eq!(local_time(0, -300), "1969-12-31 19:00（UTC-05:00）");
    }

    #[test]
    fn a_long_group_is_cut_at_a_line_and_says_so() {
        let notices: Vec<Value> = (0..200).map(|_| raised()).collect();
        let n = json!({"event": "group", "group": "cell-07", "dropped": 0, "notices": notices});
        let m = message(&n, &ctx()).unwrap();
        assert!(m.markdown.len() <= 4096);
        assert!(m.markdown.ends_with("其余请在平台中查看。"));
        assert!(m.title.contains("200"));
    }

    #[test]
    fn without_a_dashboard_the_case_number_is_given() {
        let c = TextContext {
            dashboard_url: None,
            ..ctx()
        };
        assert!(message(&raised(), &c)
            .unwrap()
            .markdown
            .contains("案件 #12"));
    }

    #[test]
    fn an_escalation_says_nobody_acknowledged_and_gives_the_level() {
        let n = json!({"event": "escalated", "case_id": 5, "escalation_level": 2, "case": {
            "rule": "group_rental", "severity": "minor", "site": "s01",
            "entity": "s01/b02/0301", "last_seen": 0}});
        let m = message(&n, &ctx()).unwrap();
        assert_eq!(m.title, "【升级·一般】疑似群租");
        assert!(m.markdown.contains("第 2 级"), "{}", m.markdown);
        assert!(m.markdown.contains("s01 小区 b02 栋 0301 室"));
        assert!(m.markdown.contains("1970-01-01 08:00（UTC+08:00）"));
        assert!(m.markdown.contains("入户核查"));
    }

    #[test]
    fn a_group_lists_each_case_with_its_link_and_the_left_out() {
        let n = json!({"event": "group", "group": "cell-07", "dropped": 3,
                       "notices": [raised(), raised()]});
        let m = message(&n, &ctx()).unwrap();
        assert_eq!(m.title, "【新告警 2 条】cell-07");
        assert_eq!(m.markdown.matches("/alerts/12)").count(), 2);
        assert!(m.markdown.contains("另有 3 条未列出"));
    }

    #[test]
    fn every_known_rule_has_a_name_and_an_action() {
        for rule in [
            "socket_overcurrent",
            "pile_offline",
            "night_water_leak",
            "meter_stuck",
        ] {
            assert_ne!(rule_name(rule), rule_name("no_such_rule"), "{rule}");
            assert_ne!(what_to_do(rule), what_to_do("no_such_rule"), "{rule}");
        }
    }

    #[test]
    fn unknown_events_have_no_message() {
        assert!(message(&json!({"event": "x"}), &ctx()).is_none());
    }
}

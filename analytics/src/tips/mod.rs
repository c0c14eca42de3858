//! Citizens' tip-offs (举报线索) and inspectors' own findings, in the same
//! case loop as sensor alerts.
//!
//! Grid staff work from sensors, from the hotline and from what people
//! report; a tip that lives in another system is a tip nobody follows to
//! closure. Here a tip becomes a case of rule [`RULE_TIP`] (or
//! [`RULE_PATROL`] for an inspector's finding) on the flat it names, routed
//! to that flat's grid cell like any alert, handled and closed the same way
//! (with photos), and counted in the assessment report. A tip about a flat
//! that already has an active sensor case is corroborated: it opens one
//! severity higher and both cases note each other.
//!
//! What is kept apart from the case: the receipt code the reporter follows
//! it with, the reporter's contact (visible to the office only, never to
//! grid staff, never logged), and the reward bookkeeping (a confirmed tip's
//! reward by hazard kind, paid or not). See docs/tips.md.

pub mod limit;
pub mod strip;

use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Rule of a case opened from a citizen's tip-off (public page or hotline).
pub const RULE_TIP: &str = "tip_off";
/// Rule of a case opened from an inspector's finding on patrol.
pub const RULE_PATROL: &str = "patrol_finding";

/// The `[alerts.tips]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TipsConfig {
    /// Serve the public tip-off page (`/tip`) without an account.
    pub public_page: bool,
    /// Tip-offs one client address may send in an hour; more are refused
    /// with 429 and counted.
    pub per_client_per_hour: u32,
    /// The largest photo accepted, bytes.
    pub max_photo_bytes: usize,
    /// Where a tip goes whose address matches no registered flat: the
    /// office's cell, which places it by hand. Without one such a tip is
    /// refused with a request to give the standard address.
    pub unplaced_cell: Option<String>,
    /// A confirmed tip's reward by hazard, yuan (the city's own schedule).
    pub rewards_yuan: BTreeMap<String, u32>,
}

impl Default for TipsConfig {
    fn default() -> Self {
        Self {
            public_page: true,
            per_client_per_hour: 5,
            max_photo_bytes: 5 << 20,
            unplaced_cell: None,
            rewards_yuan: Hazard::ALL
                .iter()
                .map(|h| (h.as_str().to_owned(), h.default_reward_yuan()))
                .collect(),
        }
    }
}

/// What a tip is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    /// E-bikes taken indoors or charged there (电动车进楼入户、飞线充电).
    IndoorCharging,
    /// An illegal group rental (群租房).
    GroupRental,
    /// Living, working and storage in one space (三合一).
    ThreeInOne,
    /// Any other fire hazard (other 火灾隐患).
    Other,
}

impl Hazard {
    /// Every kind, in the order the form lists them.
    pub const ALL: [Hazard; 4] = [
        Hazard::IndoorCharging,
        Hazard::GroupRental,
        Hazard::ThreeInOne,
        Hazard::Other,
    ];

    /// The form's and the store's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Hazard::IndoorCharging => "indoor_charging",
            Hazard::GroupRental => "group_rental",
            Hazard::ThreeInOne => "three_in_one",
            Hazard::Other => "other",
        }
    }

    /// Parses [`Hazard::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// In Chinese, for the form and the case's title.
    pub fn zh(self) -> &'static str {
        match self {
            Hazard::IndoorCharging => "电动车进楼入户或室内充电",
            Hazard::GroupRental => "群租房",
            Hazard::ThreeInOne => "“三合一”场所",
            Hazard::Other => "其他火灾隐患",
        }
    }

    /// The case's severity before any corroboration.
    pub fn severity(self) -> Severity {
        match self {
            Hazard::IndoorCharging | Hazard::ThreeInOne => Severity::Major,
            Hazard::GroupRental | Hazard::Other => Severity::Minor,
        }
    }

    fn default_reward_yuan(self) -> u32 {
        match self {
            Hazard::IndoorCharging => 100,
            Hazard::GroupRental | Hazard::ThreeInOne => 300,
            Hazard::Other => 50,
        }
    }
}

/// Where a tip came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The public page, without an account.
    Public,
    /// The 12345 hotline's export.
    Hotline,
    /// An inspector on patrol.
    Patrol,
}

impl Channel {
    /// The store's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Public => "public",
            Channel::Hotline => "hotline",
            Channel::Patrol => "patrol",
        }
    }
}

/// A tip as received, before it is a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTip {
    /// Where it came from.
    pub channel: Channel,
    /// What it is about.
    pub hazard: Hazard,
    /// The flat it names, `site/building/unit`, once placed.
    pub flat: String,
    /// The place as the reporter wrote it.
    pub place: String,
    /// What they saw (at most [`MAX_TEXT`] characters).
    pub text: String,
    /// How to reach them, if they gave it; shown to the office only.
    pub contact: Option<String>,
    /// When it was received.
    pub at: Timestamp,
}

/// The longest description or contact kept, characters.
pub const MAX_TEXT: usize = 2000;

/// The alphabet of receipt codes: no 0/O, 1/I/L, so a code read out on the
/// phone is not misheard.
const RECEIPT_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters of a receipt code: 31^12 ≈ 8·10^17, so guessing one is hopeless
/// at [`TipsConfig::per_client_per_hour`] tries.
pub const RECEIPT_LEN: usize = 12;

/// A fresh receipt code from the operating system's random source.
pub fn receipt() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..RECEIPT_LEN)
        .map(|_| RECEIPT_ALPHABET[rng.random_range(0..RECEIPT_ALPHABET.len())] as char)
        .collect()
}

/// Whether `code` could be a receipt code (before any lookup).
pub fn plausible_receipt(code: &str) -> bool {
    code.len() == RECEIPT_LEN && code.bytes().all(|b| RECEIPT_ALPHABET.contains(&b))
}

/// The case a tip opens: routed to `cell`, one severity higher when
/// `corroborated` by an active sensor case on the same flat. The case's
/// texts carry what was reported, never who reported it.
pub fn alert_of(tip: &NewTip, receipt: &str, cell: &str, corroborated: bool) -> Alert {
    let rule = match tip.channel {
        Channel::Patrol => RULE_PATROL,
        Channel::Public | Channel::Hotline => RULE_TIP,
    };
    let mut severity = tip.hazard.severity();
    if corroborated {
        severity = match severity {
            Severity::Minor => Severity::Major,
            _ => Severity::Critical,
        };
    }
    let site = tip.flat.split('/').next().unwrap_or_default().to_owned();
    let source = match tip.channel {
        Channel::Public => "群众举报",
        Channel::Hotline => "12345热线",
        Channel::Patrol => "巡查发现",
    };
    let mut values = BTreeMap::new();
    values.insert("corroborated".to_owned(), f64::from(u8::from(corroborated)));
    Alert {
        schema: 1,
        id: format!("{rule}:{}:{receipt}", tip.flat),
        rule: rule.to_owned(),
        entity: tip.flat.clone(),
        cell: cell.to_owned(),
        site,
        severity,
        state: AlertState::Open,
        ts: tip.at,
        title: format!("{source}：{}（{}）", tip.hazard.zh(), tip.flat),
        summary: format!(
            "{source}，隐患类型：{}。地点：{}。情况：{}",
            tip.hazard.zh(),
            tip.place,
            tip.text
        ),
        evidence: Evidence {
            values,
            ..Evidence::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_unguessable_codes_of_the_alphabet() {
        let a = receipt();
        let b = receipt();
        assert_ne!(a, b);
        assert!(plausible_receipt(&a), "{a}");
        assert!(!plausible_receipt("ABC"));
        assert!(!plausible_receipt("0OIL23456789"));
    }

    #[test]
    fn a_corroborated_tip_opens_one_severity_higher_and_names_no_reporter() {
        let tip = NewTip {
            channel: Channel::Public,
            hazard: Hazard::GroupRental,
            flat: "s01/b01/0301".into(),
            place: "幸福路1号301".into(),
            text: "很多人进出".into(),
            contact: Some("13800000000".into()),
            at: Timestamp(0),
        };
        let plain = alert_of(&tip, "R", "c-1", false);
        assert_eq!(
            (plain.rule.as_str(), plain.severity),
            (RULE_TIP, Severity::Minor)
        );
        assert_eq!(plain.site, "s01");
        let backed = alert_of(&tip, "R", "c-1", true);
        assert_eq!(backed.severity, Severity::Major);
        for a in [plain, backed] {
            assert!(!a.summary.contains("13800000000") && !a.title.contains("13800000000"));
        }
    }
}

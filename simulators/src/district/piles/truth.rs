//! The ground truth of the pile faults, from what the sockets did, by the
//! definitions of docs/detection.md's pile table (not by running the rules).

use super::*;

/// Tracks one condition for the truth: a case opens once it has held
/// `hold_ms` (a hold shorter than the 60 s step is met by the step itself:
/// the simulation holds every value for the whole minute) and closes at the
/// first sample where it no longer holds.
#[allow(clippy::too_many_arguments)]
pub(super) fn truth_hold(
    cases: &mut Vec<Case>,
    h: &mut Hold,
    k: &str,
    entity: &str,
    cond: bool,
    ts: i64,
    hold_ms: i64,
    note: &str,
) {
    if cond {
        let since = *h.since.get_or_insert(ts);
        let needed = if hold_ms < MIN_MS { 0 } else { hold_ms };
        if !h.done && ts - since >= needed {
            h.done = true;
            h.open = Some(cases.len());
            cases.push(Case {
                kind: k.into(),
                entity: entity.into(),
                start_ms: since + hold_ms,
                end_ms: None,
                note: note.into(),
                traits: Default::default(),
            });
        }
    } else {
        h.since = None;
        if let Some(i) = h.open.take() {
            cases[i].end_ms = Some(ts);
        }
    }
}

/// The truth of the "abnormal session energy" row, from what the sockets
/// reported, in recording order: a case opens at the first sample at which
/// a session's energy is above 1.3 × the median of the energies of the
/// sessions of its tag that had ended when it began (at least 3; the last
/// 10, the rule's window), and closes when the session ends. Every session
/// counts, planted or not: an ordinary one whose battery started emptier
/// than usual is a case too, by the table's definition.
pub(super) fn energy_truth(mut log: EnergyLog) -> Vec<Case> {
    use std::collections::HashMap;
    struct Live {
        tag: String,
        note: String,
        median: Option<f64>,
        previous: usize,
        wh: f64,
        case: Option<usize>,
    }
    log.sort_by_key(|(ts, pile, order, _)| (*ts, *pile, *order));
    let mut history: HashMap<String, Vec<f32>> = HashMap::new();
    let mut live: HashMap<String, Live> = HashMap::new();
    let mut cases: Vec<Case> = Vec::new();
    let end = |live: &mut HashMap<String, Live>,
               history: &mut HashMap<String, Vec<f32>>,
               cases: &mut Vec<Case>,
               socket: &str,
               ts: i64| {
        let Some(l) = live.remove(socket) else {
            return;
        };
        if let Some(i) = l.case {
            cases[i].end_ms = Some(ts);
            if let Some(m) = l.median {
                cases[i].note = format!(
                    "{}; session {:.0} Wh = {:.2} x the median {:.0} Wh of {} sessions",
                    cases[i].note,
                    l.wh,
                    l.wh / m,
                    m,
                    l.previous
                );
            }
        }
        if l.wh > 0.0 {
            let h = history.entry(l.tag).or_default();
            h.push(l.wh as f32);
            if h.len() > ENERGY_HISTORY {
                h.remove(0);
            }
        }
    };
    for (ts, _, _, obs) in log {
        match obs {
            EnergyObs::Start { socket, tag, note } => {
                end(&mut live, &mut history, &mut cases, &socket, ts);
                let past = history.get(&tag).map_or(&[][..], Vec::as_slice);
                live.insert(
                    socket,
                    Live {
                        median: median_wh(past),
                        previous: past.len(),
                        tag,
                        note,
                        wh: 0.0,
                        case: None,
                    },
                );
            }
            EnergyObs::Energy { socket, wh } => {
                let Some(l) = live.get_mut(&socket) else {
                    continue;
                };
                l.wh = l.wh.max(wh);
                let over = l
                    .median
                    .is_some_and(|m| l.previous >= ENERGY_MIN_SESSIONS && wh > ENERGY_RATIO * m);
                if over && l.case.is_none() {
                    l.case = Some(cases.len());
                    cases.push(Case {
                        kind: kind::PILE_ABNORMAL_SESSION_ENERGY.into(),
                        entity: socket,
                        start_ms: ts,
                        end_ms: None,
                        note: format!("{}; tag {}", l.note, l.tag),
                        traits: Default::default(),
                    });
                }
            }
            EnergyObs::End { socket } => end(&mut live, &mut history, &mut cases, &socket, ts),
        }
    }
    cases
}

/// Median of session energies, as the rule takes it (`None` before the
/// first session).
pub(super) fn median_wh(v: &[f32]) -> Option<f64> {
    let v: Vec<f64> = v.iter().map(|x| f64::from(*x)).collect();
    (!v.is_empty()).then(|| gridwatch_analytics::stats::median(&v))
}

//! The charging piles' command language: faults with timing, plugging in
//! and out, at start (`--fault overcurrent,socket=2,at=30s,for=60s`) and
//! at run time through the shared control surface ([`crate::control`]).
//!
//! ```text
//! fault KIND socket=N [unit=U] [at=DUR] [for=DUR]   inject (at: from now; for: then clear)
//! clear KIND|all socket=N [unit=U]                  remove one fault or all
//! plug socket=N [charger=KIND] [unit=U]             plug a charger in (default lithium)
//! unplug socket=N [unit=U]                          take it out
//! hang [unit=U] / resume [unit=U]                   firmware hangs: registers stuck / runs again
//! status                                            faults and chargers per socket
//! help                                              this list
//! ```
//!
//! Words may be separated by spaces or commas, so the flag's form works
//! typed too. `at` and `for` are in the pile's *simulated* time: with
//! `--speed 60`, `for=60s` lasts one wall-clock second. `unit` picks the
//! pile on an RTU line; with one pile it may be left out.

use super::{ChargerKind, Fault, SharedPile};
use crate::control::{parse_duration, unknown_word, Handler};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The fault names of the command language, in [`Fault`]'s order.
pub const FAULT_NAMES: [&str; 4] = [
    "overcurrent",
    "over_temperature",
    "charging_past_full",
    "residual_current",
];

/// The charger names of `plug charger=…`.
pub const CHARGER_NAMES: [&str; 7] = [
    "lithium",
    "lead_acid",
    "lithium_sharp",
    "fast",
    "two_packs",
    "never_stops",
    "overheating",
];

const VERBS: [&str; 8] = [
    "fault", "clear", "plug", "unplug", "hang", "resume", "status", "help",
];

/// Help text of the command language.
pub const HELP: &str = "fault KIND socket=N [unit=U] [at=DUR] [for=DUR]
clear KIND|all socket=N [unit=U]
plug socket=N [charger=KIND] [unit=U]
unplug socket=N [unit=U]
hang [unit=U] / resume [unit=U]  (the firmware hangs: registers stuck at their last values)
status
faults: overcurrent, over_temperature (overtemp), charging_past_full, residual_current
chargers: lithium, lead_acid, lithium_sharp, fast, two_packs, never_stops, overheating
durations: 30s, 5m, 2h, 1500ms (simulated time)";

/// Parses a fault name (a few short aliases too).
pub fn parse_fault(word: &str) -> Result<Fault, String> {
    Ok(
        match word.trim().to_lowercase().replace('-', "_").as_str() {
            "overcurrent" => Fault::Overcurrent,
            "over_temperature" | "overtemp" | "overtemperature" => Fault::OverTemperature,
            "charging_past_full" | "past_full" => Fault::ChargingPastFull,
            "residual_current" | "leakage" | "residual" => Fault::ResidualCurrent,
            _ => return Err(unknown_word("fault", word, &FAULT_NAMES)),
        },
    )
}

/// Parses a charger name.
pub fn parse_charger(word: &str) -> Result<ChargerKind, String> {
    Ok(
        match word.trim().to_lowercase().replace('-', "_").as_str() {
            "lithium" => ChargerKind::Lithium,
            "lead_acid" => ChargerKind::LeadAcid,
            "lithium_sharp" => ChargerKind::LithiumSharp,
            "fast" => ChargerKind::Fast,
            "two_packs" => ChargerKind::TwoPacks,
            "never_stops" => ChargerKind::NeverStops,
            "overheating" => ChargerKind::Overheating,
            _ => return Err(unknown_word("charger", word, &CHARGER_NAMES)),
        },
    )
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Inject `fault`, after `at`, for `lasting` (until cleared if `None`).
    Fault {
        unit: Option<u8>,
        socket: u16,
        fault: Fault,
        at: Duration,
        lasting: Option<Duration>,
    },
    /// Clear one fault, or every fault (`None`).
    Clear {
        unit: Option<u8>,
        socket: u16,
        fault: Option<Fault>,
    },
    /// Plug a charger in.
    Plug {
        unit: Option<u8>,
        socket: u16,
        charger: ChargerKind,
    },
    /// Unplug.
    Unplug { unit: Option<u8>, socket: u16 },
    /// Hang the firmware (registers stuck) or let it run again.
    Hang { unit: Option<u8>, hung: bool },
    /// Report faults and chargers.
    Status,
    /// The command list.
    Help,
}

/// Parses one command line (words separated by spaces or commas).
pub fn parse(text: &str) -> Result<Command, String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let Some((&verb, rest)) = words.split_first() else {
        return Err("empty command; try `help`".into());
    };
    let (mut positional, mut keys) = (Vec::new(), BTreeMap::new());
    for w in rest {
        match w.split_once('=') {
            Some((k, v)) => {
                if keys.insert(k.to_lowercase(), v).is_some() {
                    return Err(format!("{text:?}: {k}= is given twice"));
                }
            }
            None => positional.push(*w),
        }
    }
    let allowed: &[&str] = match verb {
        "fault" => &["socket", "unit", "at", "for"],
        "clear" | "unplug" => &["socket", "unit"],
        "hang" | "resume" => &["unit"],
        "plug" => &["socket", "unit", "charger"],
        "status" | "help" => &[],
        other => return Err(unknown_word("command", other, &VERBS)),
    };
    if let Some(k) = keys.keys().find(|k| !allowed.contains(&k.as_str())) {
        let msg = unknown_word(&format!("key for {verb}"), k, allowed);
        return Err(if allowed.is_empty() {
            format!("{verb} takes no keys, not {k}=")
        } else {
            msg
        });
    }
    let want_positional = usize::from(matches!(verb, "fault" | "clear"));
    if positional.len() != want_positional {
        return Err(format!(
            "{text:?}: {verb} takes {}; see `help`",
            match verb {
                "fault" => "one fault name then key=value words, e.g. fault overcurrent socket=2",
                "clear" => "a fault name or `all` then socket=N",
                _ => "key=value words only",
            }
        ));
    }
    let unit = match keys.get("unit") {
        Some(u) => Some(
            u.parse::<u8>()
                .map_err(|_| format!("unit={u}: not a unit address (1 to 247)"))?,
        ),
        None => None,
    };
    let socket = || -> Result<u16, String> {
        let s = keys
            .get("socket")
            .ok_or_else(|| format!("{text:?}: {verb} needs socket=N"))?;
        s.parse::<u16>()
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| format!("socket={s}: not a socket number (1, 2, …)"))
    };
    let duration = |k: &str| -> Result<Option<Duration>, String> {
        keys.get(k)
            .map(|v| parse_duration(v).map_err(|e| format!("{k}={v}: {e}")))
            .transpose()
    };
    Ok(match verb {
        "fault" => Command::Fault {
            unit,
            socket: socket()?,
            fault: parse_fault(positional[0])?,
            at: duration("at")?.unwrap_or_default(),
            lasting: duration("for")?,
        },
        "clear" => Command::Clear {
            unit,
            socket: socket()?,
            fault: match positional[0] {
                "all" => None,
                f => Some(parse_fault(f)?),
            },
        },
        "plug" => Command::Plug {
            unit,
            socket: socket()?,
            charger: keys
                .get("charger")
                .map(|c| parse_charger(c))
                .transpose()?
                .unwrap_or(ChargerKind::Lithium),
        },
        "unplug" => Command::Unplug {
            unit,
            socket: socket()?,
        },
        "hang" | "resume" => Command::Hang {
            unit,
            hung: verb == "hang",
        },
        "status" => Command::Status,
        _ => Command::Help,
    })
}

/// An action waiting for its simulated time.
#[derive(Debug, Clone)]
struct Pending {
    unit: u8,
    due_ms: u64,
    socket: u16,
    fault: Fault,
    inject: bool,
}

/// The piles one simulator serves (one for `pile`, one per unit for `rtu`)
/// and the timed faults waiting for their moment.
#[derive(Clone)]
pub struct Piles {
    piles: Arc<BTreeMap<u8, SharedPile>>,
    pending: Arc<Mutex<Vec<Pending>>>,
}

impl Piles {
    /// Controls `piles`, keyed by unit address.
    pub fn new(piles: BTreeMap<u8, SharedPile>) -> Self {
        Self {
            piles: Arc::new(piles),
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn pile(&self, unit: Option<u8>) -> Result<(u8, &SharedPile), String> {
        let units: Vec<u8> = self.piles.keys().copied().collect();
        match unit {
            Some(u) => self
                .piles
                .get(&u)
                .map(|p| (u, p))
                .ok_or_else(|| format!("no pile is unit {u}; piles here: units {units:?}")),
            None if self.piles.len() == 1 => {
                let (u, p) = self.piles.iter().next().expect("one pile");
                Ok((*u, p))
            }
            None => Err(format!(
                "several piles here (units {units:?}): say which with unit=U"
            )),
        }
    }

    /// Carries out one command line and says what it did.
    pub fn command(&self, text: &str) -> Result<String, String> {
        match parse(text)? {
            Command::Help => Ok(HELP.to_string()),
            Command::Status => Ok(self.status()),
            Command::Fault {
                unit,
                socket,
                fault,
                at,
                lasting,
            } => {
                let (unit, pile) = self.pile(unit)?;
                let now = pile.with(|p| {
                    p.socket(socket).map_err(|e| e.to_string())?;
                    Ok::<_, String>(p.now_ms())
                })?;
                let due_ms = now + at.as_millis() as u64;
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                let mut said = if at.is_zero() {
                    pile.with(|p| p.inject(socket, fault))
                        .map_err(|e| e.to_string())?;
                    format!("unit {unit} socket {socket}: {fault:?} injected")
                } else {
                    pending.push(Pending {
                        unit,
                        due_ms,
                        socket,
                        fault,
                        inject: true,
                    });
                    format!(
                        "unit {unit} socket {socket}: {fault:?} in {} s (simulated)",
                        at.as_secs_f64()
                    )
                };
                if let Some(d) = lasting {
                    pending.push(Pending {
                        unit,
                        due_ms: due_ms + d.as_millis() as u64,
                        socket,
                        fault,
                        inject: false,
                    });
                    said.push_str(&format!(", for {} s (simulated)", d.as_secs_f64()));
                }
                Ok(said)
            }
            Command::Clear {
                unit,
                socket,
                fault,
            } => {
                let (unit, pile) = self.pile(unit)?;
                match fault {
                    Some(f) => pile.with(|p| p.clear_fault(socket, f)),
                    None => pile.with(|p| p.clear_faults(socket)),
                }
                .map_err(|e| e.to_string())?;
                // A timed fault cleared by hand is not re-injected later.
                self.pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|p| {
                        !(p.unit == unit
                            && p.socket == socket
                            && fault.is_none_or(|f| f == p.fault))
                    });
                Ok(format!(
                    "unit {unit} socket {socket}: {} cleared",
                    fault.map_or("every fault".to_string(), |f| format!("{f:?}"))
                ))
            }
            Command::Plug {
                unit,
                socket,
                charger,
            } => {
                let (unit, pile) = self.pile(unit)?;
                let spec = pile
                    .with(|p| p.plug_in(socket, charger))
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "unit {unit} socket {socket}: {charger:?} charger plugged in ({:.1} Ah pack at {:.0} %, {:.1} A)",
                    spec.capacity_ah,
                    spec.start_soc * 100.0,
                    spec.charge_current_a
                ))
            }
            Command::Hang { unit, hung } => {
                let (unit, pile) = self.pile(unit)?;
                pile.with(|p| p.set_hung(hung));
                Ok(format!(
                    "unit {unit}: firmware {}",
                    if hung {
                        "hung, registers stuck at their last values"
                    } else {
                        "running again"
                    }
                ))
            }
            Command::Unplug { unit, socket } => {
                let (unit, pile) = self.pile(unit)?;
                pile.with(|p| p.unplug(socket)).map_err(|e| e.to_string())?;
                Ok(format!("unit {unit} socket {socket}: unplugged"))
            }
        }
    }

    /// One line per pile: its simulated time and each socket's charger and faults.
    fn status(&self) -> String {
        let mut lines = Vec::new();
        for (unit, pile) in self.piles.iter() {
            lines.push(pile.with(|p| {
                let mut sockets = Vec::new();
                for s in 1..=p.socket_count() {
                    let charger = p
                        .session(s)
                        .ok()
                        .flatten()
                        .map(|t| format!("{:?}", t.spec.kind));
                    let faults = p.faults(s).unwrap_or_default();
                    if charger.is_some() || !faults.is_empty() {
                        sockets.push(format!(
                            "#{s} {}{}",
                            charger.unwrap_or_else(|| "empty".into()),
                            if faults.is_empty() {
                                String::new()
                            } else {
                                format!(" {faults:?}")
                            }
                        ));
                    }
                }
                format!(
                    "unit {unit} at {} s{}: {}",
                    p.now_ms() / 1000,
                    if p.is_hung() { " (firmware hung)" } else { "" },
                    if sockets.is_empty() {
                        "nothing plugged in".into()
                    } else {
                        sockets.join(", ")
                    }
                )
            }));
        }
        lines.join("\n")
    }

    /// Carries out the timed actions whose simulated time has come; returns
    /// what was done, one line each.
    pub fn due(&self) -> Vec<String> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut done = Vec::new();
        pending.retain(|p| {
            let Some(pile) = self.piles.get(&p.unit) else {
                return false;
            };
            if pile.with(|m| m.now_ms()) < p.due_ms {
                return true;
            }
            let result = pile.with(|m| {
                if p.inject {
                    m.inject(p.socket, p.fault)
                } else {
                    m.clear_fault(p.socket, p.fault)
                }
            });
            done.push(match result {
                Ok(()) => format!(
                    "unit {} socket {}: {:?} {}",
                    p.unit,
                    p.socket,
                    p.fault,
                    if p.inject { "injected" } else { "cleared" }
                ),
                Err(e) => format!("unit {} socket {}: {e}", p.unit, p.socket),
            });
            false
        });
        done
    }

    /// A [`Handler`] for the control surface.
    pub fn handler(&self) -> Handler {
        let me = self.clone();
        Arc::new(move |text: &str| me.command(text))
    }

    /// Runs the timed actions as their time comes (checked every 20 ms of
    /// wall time), logging each, until `shutdown`.
    pub fn spawn_timer(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {
                        for line in me.due() {
                            tracing::info!("{line}");
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;

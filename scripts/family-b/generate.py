"""Family B: a held-out district built on richardsonpy (see
docs/household-family-b.md). Writes DIR/recording.jsonl, truth.json and
register.json in the formats `gridwatch-analytics evaluate` reads.

Deterministic for a seed: every draw comes from random.Random streams seeded
from (seed, flat, purpose) and from richardsonpy's global generators, seeded
per flat before it runs.
"""

import argparse
import datetime as dt
import json
import math
import os
import random
import sys
import tempfile

import numpy as np

import household as hh

DAY_MS = 86_400_000
MIN_MS = 60_000
UTC_OFFSET_MIN = 480
SITE = "s01"
# Spring Festival (Chinese New Year's day) by year, local dates.
SPRING_FESTIVAL = {2026: dt.date(2026, 2, 17), 2027: dt.date(2027, 2, 6),
                   2028: dt.date(2028, 1, 26)}
CONFOUNDERS = ("night_ac", "storage_water_heater", "electric_blanket", "pc_always_on",
               "aquarium", "oil_heater", "shift_worker", "ebike_charges_elsewhere")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flats", type=int, default=200)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default="2027-01-20", help="first local day, YYYY-MM-DD")
    p.add_argument("--out", required=True)
    p.add_argument("--interval-min", type=int, choices=(1, 5, 15), default=5,
                   help="electricity reading interval")
    p.add_argument("--model-days", type=int, default=14,
                   help="days richardsonpy simulates per flat; longer runs reuse "
                        "them week-aligned (it takes ~0.2 s per flat-day)")
    p.add_argument("--power", choices=("instant", "register"), default="instant",
                   help="power_w as the meter's instantaneous reading, or the mean "
                        "from the quantised register's change")
    p.add_argument("--case-free", action="store_true",
                   help="every confounder, nothing planted")
    a = p.parse_args(argv)
    if a.flats < 1 or a.days < 1:
        p.error("--flats and --days must be at least 1")
    try:
        a.start_date = dt.date.fromisoformat(a.start)
    except ValueError:
        p.error(f"--start {a.start!r} is not a date YYYY-MM-DD")
    return a


def layout(flats):
    """Flats into buildings of 6-8 floors, 6 flats a floor."""
    out, b = [], 0
    while len(out) < flats:
        b += 1
        floors = 6 + (b % 3)
        for f in range(1, floors + 1):
            for u in range(1, 7):
                if len(out) < flats:
                    out.append((f"b{b:02d}", f"{f:02d}{u:02d}"))
    return out


def plan_flat(rng, i, args, sf_day):
    """What lives in flat ``i``: people, traits and planted cases."""
    p = {"registered": rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5, 6)), "traits": [],
         "cases": [], "migrant": rng.random() < 0.45}
    p["living"] = p["registered"] if rng.random() > 0.15 else max(1, p["registered"] - 1)
    days = args.days
    winter = args.start_date.month in (11, 12, 1, 2, 3)
    rate = 0.0 if args.case_free else 1.0
    for c, pr in (("night_ac", 0.35 if winter else 0.6), ("storage_water_heater", 0.3),
                  ("electric_blanket", 0.25 if winter else 0.0), ("pc_always_on", 0.1),
                  ("aquarium", 0.05), ("oil_heater", 0.12 if winter else 0.0),
                  ("shift_worker", 0.1), ("ebike_charges_elsewhere", 0.15)):
        if rng.random() < pr * (1.6 if args.case_free else 1.0):
            p["traits"].append(c)
    if p["migrant"] and sf_day is not None and -25 < sf_day < days + 5:
        leave = sf_day - rng.randint(2, 8)
        p["away"] = (max(leave, 0), min(leave + rng.randint(7, 21), days))
        if p["away"][1] > p["away"][0]:
            p["traits"].append("emptied_spring_festival")
    r = rng.random()
    if r < 0.07 * rate:
        p["registered"] = rng.randint(1, 3)
        p["living"] = rng.randint(6, 14)
        p["cases"].append(("group_rental", 0, f"{p['living']} people, {p['registered']} registered"))
    elif r < 0.10 * rate:
        p["three_in_one"] = True
        p["cases"].append(("three_in_one", 0, "weekday daytime machines"))
    if rng.random() < 0.10 * rate:
        kind = rng.choice(("lead_acid", "lead_acid", "lithium", "lithium", "fast"))
        p["charger"] = {"kind": kind, "packs": 2 if rng.random() < 0.15 else 1,
                        "freq": rng.uniform(0.4, 0.95), "top_up": rng.uniform(0, 0.35),
                        "from_day": rng.randint(0, max(days // 3, 0)),
                        "seen_at": "gate" if rng.random() < 0.25 else "lift_lobby"}
    elif rng.random() < 0.02 * rate:
        p["bike_indoors"] = rng.randint(0, max(days // 3, 0))
    if rng.random() < 0.06 * rate:
        lph = math.exp(rng.uniform(math.log(0.5), math.log(20)))
        p["leak"] = (rng.randint(0, max(days - 5, 0)), lph)
    return p


def flat_minutes(args, i, plan, first_doy, first_weekday):
    """Electricity W, water L and gas m3 per minute of the run, plus charge
    session starts (minute of the run) for the truth and the sightings."""
    n = args.days * hh.MIN_PER_DAY
    m_days = min(args.days, max(7, args.model_days // 7 * 7))
    occ = min(5, plan["living"])
    base, active = hh.model_days(occ, m_days, first_weekday, first_doy,
                                 seed=args.seed * 1_000_003 + i)
    reps = -(-args.days // m_days)
    elec = np.tile(base, reps)[:n].copy()
    active = np.tile(active, reps)[:n].copy()
    rng = random.Random(f"{args.seed}/{i}/loads")
    winter = args.start_date.month in (11, 12, 1, 2, 3)
    extra = max(0, plan["living"] - occ)
    if extra:  # people the 5-person model does not hold: phones, lights, fans, laptops
        elec += np.where(active > 0, 18.0 * extra, 6.0 * extra)
        active = np.where(active > 0, active * plan["living"] / occ, active)
    if "shift_worker" in plan["traits"]:  # the model's day shifted by 9 hours
        elec = np.roll(elec, 9 * 60)
        active = np.roll(active, 9 * 60)
    water = np.zeros(n)
    gas = np.zeros(n)
    sessions = []
    away = plan.get("away")
    three = plan.get("three_in_one")
    heater_w = rng.uniform(1500, 3000)
    for d in range(args.days):
        a, b = d * 1440, (d + 1) * 1440
        weekday = (first_weekday - 1 + d) % 7 + 1
        if away and away[0] <= d < away[1]:
            fridge = hh.thermostat(rng, 1440, rng.uniform(70, 110), rng.randint(40, 70), 0.35)
            elec[a:b] = rng.uniform(2, 6) + fridge
            active[a:b] = 0
            continue
        day_e = np.zeros(1440 + 600)
        t = plan["traits"]
        if "night_ac" in t and rng.random() < 0.85:
            day_e += hh.night_ac_heating(rng, d, winter)
        if "electric_blanket" in t and rng.random() < 0.8:
            on = 21 * 60 + rng.randint(0, 120)
            hh.add_block(day_e, on, rng.randint(120, 480), hh.thermostat(rng, 600, rng.uniform(40, 120), 20, 0.4))
        if "oil_heater" in t and rng.random() < 0.7:
            on = rng.choice((19, 20, 22, 23)) * 60 + rng.randint(0, 59)
            hh.add_block(day_e, on, rng.randint(180, 600), hh.thermostat(rng, 600, rng.choice((800, 1200, 2000)), 30, 0.5))
        if "pc_always_on" in t:
            day_e[:1440] += rng.uniform(60, 180)
        if "aquarium" in t:
            day_e[:1440] += hh.thermostat(rng, 1440, rng.uniform(50, 150), 45, 0.3) + 10
        if "storage_water_heater" in t:
            # Off-peak timer (23:00-07:00) or thermostat top-ups after use.
            if i % 2:
                hh.add_block(day_e, 23 * 60, rng.randint(40, 150), heater_w)
            else:
                for _ in range(rng.randint(2, 5)):
                    hh.add_block(day_e, rng.randint(0, 1439), rng.randint(10, 35), heater_w)
        if three and weekday <= 5:
            for _ in range(rng.randint(20, 60)):
                s = rng.randint(9 * 60, 18 * 60)
                hh.add_block(day_e, s, rng.randint(2, 25), rng.uniform(400, 1500))
            day_e[9 * 60:18 * 60] += 150
        ch = plan.get("charger")
        if ch and d >= ch["from_day"] and rng.random() < ch["freq"]:
            top = rng.random() < ch["top_up"]
            s = hh.charge_start_minute(rng)
            w = hh.charger_session(ch["kind"], rng, ch["packs"], top)
            hh.add_block(day_e, s, len(w), w)
            sessions.append(a + s)
        elec[a:b] += day_e[:1440]
        if b < n:
            elec[b:min(b + 600, n)] += day_e[1440:1440 + min(600, n - b)]
        _water_gas_day(rng, plan, active[a:b], water[a:b], gas[a:b], winter,
                       "storage_water_heater" in t)
        if three and weekday <= 5:
            water[a + 9 * 60:a + 18 * 60] += rng.uniform(0.02, 0.08)
    if "leak" in plan:
        d0, lph = plan["leak"]
        water[d0 * 1440:] += lph / 60.0
    return elec, water, gas, sessions


def _water_gas_day(rng, plan, active, water, gas, winter, electric_heater):
    """Showers, flushes, cooking and washing at minutes someone is active."""
    awake = np.flatnonzero(active > 0)
    if awake.size == 0:
        return
    people = plan["living"]
    for _ in range(people):
        for _ in range(rng.randint(3, 7)):  # flushes and hand washing
            water[rng.choice(awake)] += rng.uniform(4, 9)
        if rng.random() < (0.6 if winter else 0.95):  # shower, mostly evening
            ev = awake[(awake >= 19 * 60) | (awake < 60)]
            s = int(rng.choice(ev if ev.size and rng.random() < 0.7 else awake))
            for m in range(s, min(s + rng.randint(5, 12), 1440)):
                water[m] += rng.uniform(6, 9)
                if not electric_heater:
                    gas[m] += rng.uniform(0.025, 0.04)  # gas water heater
    meals = [(6 * 60, 9 * 60), (11 * 60, 13 * 60 + 30), (17 * 60, 20 * 60 + 30)]
    for lo, hi in meals:
        cand = awake[(awake >= lo) & (awake < hi)]
        if cand.size and rng.random() < 0.8:
            s = int(rng.choice(cand))
            for m in range(s, min(s + rng.randint(10, 45), 1440)):
                gas[m] += rng.uniform(0.004, 0.009) * (1 + 0.1 * people)
            water[min(s + 40, 1439)] += rng.uniform(5, 15) * (1 + 0.2 * people)
    if rng.random() < 0.2 + 0.08 * people:  # washing machine fills
        s = int(rng.choice(awake))
        for k in range(3):
            water[min(s + 20 * k, 1439)] += rng.uniform(12, 18)


# ---------------------------------------------------------------- meters

class Meter:
    """One meter's clock and sequence: a fixed offset and a drift per day."""

    def __init__(self, rng, gateway, building, unit, device, kind):
        self.rng, self.seq = rng, 0
        self.offset_ms = rng.randint(-120_000, 120_000)
        self.drift_ms_per_day = rng.uniform(-2000, 2000)
        self.head = {"schema": 1, "gateway": gateway, "site": SITE, "building": building,
                     "unit": unit, "device": device, "kind": kind}

    def stamp(self, t_ms, day):
        return int(t_ms + self.offset_ms + self.drift_ms_per_day * day)

    def emit(self, out, t_ms, day, values):
        self.seq += 1
        r = dict(self.head, ts=self.stamp(t_ms, day), seq=self.seq, values=values)
        line = json.dumps({"reading": r}, separators=(",", ":"))
        out.add(r["ts"], line)
        if self.rng.random() < 0.002:  # the concentrator sent it twice
            out.add(r["ts"], line)


def meter_readings(out, args, t0, building, unit, i, elec, water, gas):
    """Interval readings of the flat's three meters, quantised as the field
    has them, with gaps and duplicates."""
    rng = random.Random(f"{args.seed}/{i}/meters")
    gw = f"gw-{SITE}-{building}"
    em = Meter(rng, gw, building, unit, f"em-{unit}", "electricity_meter")
    wm = Meter(rng, gw, building, unit, f"wm-{unit}", "water_meter")
    gm = Meter(rng, gw, building, unit, f"gm-{unit}", "gas_meter")
    step = args.interval_min
    kwh0 = rng.uniform(200, 9000)
    kwh = kwh0 + np.concatenate(([0.0], np.cumsum(elec) / 60_000.0))
    q = lambda x, quantum: math.floor(x / quantum + 1e-9) * quantum
    n = len(elec)
    skip = 0
    for end in range(step, n + 1, step):
        day = (end - 1) // 1440
        if skip:
            skip -= 1
            continue
        if rng.random() < 0.02 * step / 60:
            skip = rng.randint(0, max(0, 90 // step - 1))
            continue
        reg = q(kwh[end], 0.01)
        if args.power == "register":
            w = (reg - q(kwh[end - step], 0.01)) * 1000 * 60 / step
        else:
            w = max(0.0, elec[end - 1] + rng.gauss(0, 2))
        em.emit(out, t0 + end * MIN_MS, day, {"energy_kwh": round(reg, 2), "power_w": round(w, 1)})
    litres = rng.uniform(10_000, 900_000) + np.concatenate(([0.0], np.cumsum(water)))
    m3 = rng.uniform(50, 3000) + np.concatenate(([0.0], np.cumsum(gas)))
    for end in range(60, n + 1, 60):
        day = (end - 1) // 1440
        for meter, reg, quantum, key, unit_scale in (
                (wm, litres, 1.0, "flow_l", 1.0), (gm, m3, 0.01, "use_m3", 1.0)):
            if rng.random() < 0.01:
                continue  # one hourly reading lost
            now, before = q(reg[end], quantum), q(reg[end - 60], quantum)
            if key == "flow_l":
                vals = {"flow_l": round(now - before, 1), "volume_m3": round(now / 1000, 3)}
            else:
                vals = {"use_m3": round(now - before, 2), "volume_m3": round(now, 2)}
            meter.emit(out, t0 + end * MIN_MS, day, vals)


class DayBuckets:
    """Lines bucketed by UTC day in temporary files, then sorted by time."""

    def __init__(self, tmp, t0):
        self.tmp, self.t0, self.files = tmp, t0, {}

    def add(self, ts, line):
        k = (ts - self.t0) // DAY_MS
        f = self.files.get(k)
        if f is None:
            f = self.files[k] = open(os.path.join(self.tmp, f"{k + 10}.part"), "w")
        f.write(f"{ts}\t{line}\n")

    def write(self, path):
        n = 0
        with open(path, "w") as out:
            for k in sorted(self.files):
                self.files[k].close()
                with open(self.files[k].name) as f:
                    rows = [ln.split("\t", 1) for ln in f]
                rows.sort(key=lambda r: int(r[0]))
                out.writelines(r[1] for r in rows)
                n += len(rows)
                os.remove(self.files[k].name)
        return n


def sighting(out, gateway, reader_seq, ts, location, tag):
    key = (gateway, location)
    reader_seq[key] = reader_seq.get(key, 0) + 1
    e = {"schema": 1, "ts": ts, "gateway": gateway, "site": SITE,
         "device": f"reader-{location}", "seq": reader_seq[key], "type": "sighting",
         "location": location, "identity": tag}
    out.add(ts, json.dumps({"event": e}, separators=(",", ":")))


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    start = args.start_date
    t0 = (start - dt.date(1970, 1, 1)).days * DAY_MS - UTC_OFFSET_MIN * MIN_MS
    sf = SPRING_FESTIVAL.get(start.year) or SPRING_FESTIVAL.get(start.year + 1)
    sf_day = (sf - start).days if sf else None
    first_doy = start.timetuple().tm_yday - 1
    first_weekday = start.isoweekday()
    rng = random.Random(f"{args.seed}/district")
    flats = layout(args.flats)
    truth = {"scenario": "family-b" + ("-case-free" if args.case_free else ""), "seed": args.seed,
             "flats": args.flats, "days": args.days, "start_ms": t0,
             "end_ms": t0 + args.days * DAY_MS, "cases": [], "traits": {}}
    register = {"flats": [], "tags": []}
    reader_seq = {}
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        out = DayBuckets(tmp, t0)
        for i, (building, unit) in enumerate(flats):
            prng = random.Random(f"{args.seed}/{i}/plan")
            plan = plan_flat(prng, i, args, sf_day)
            key = f"{SITE}/{building}/{unit}"
            gw = f"gw-{SITE}-{building}"
            register["flats"].append({"flat": key, "occupants": plan["registered"],
                                      "area_m2": round(prng.uniform(35, 90), 1),
                                      "business": False})
            elec, water, gas, sessions = flat_minutes(args, i, plan, first_doy, first_weekday)
            meter_readings(out, args, t0, building, unit, i, elec, water, gas)
            tag = f"tagb-{args.seed}-{i:04d}"
            srng = random.Random(f"{args.seed}/{i}/sightings")
            ch = plan.get("charger")
            if ch or "ebike_charges_elsewhere" in plan["traits"] or "bike_indoors" in plan:
                register["tags"].append({"identity": tag, "flat": key})
            # The battery goes in before each session is plugged in: a case
            # read indoors begins when it was first read going up, not at
            # the charge that followed (the evaluator counts an alert before
            # a case's start as false).
            carried_up = None
            for s in sessions:
                if srng.random() < 0.7:  # about 30 % of reads missed
                    at = s - srng.randint(2, 12)
                    sighting(out, gw, reader_seq, t0 + at * MIN_MS, ch["seen_at"], tag)
                    if carried_up is None and ch["seen_at"] != "gate":
                        carried_up = at
            if "ebike_charges_elsewhere" in plan["traits"] or ch:
                for d in range(args.days):
                    if srng.random() < 0.5 and srng.random() < 0.7:
                        sighting(out, gw, reader_seq, t0 + (d * 1440 + srng.randint(7 * 60, 21 * 60)) * MIN_MS,
                                 "gate", tag)
            if "bike_indoors" in plan:
                for d in range(plan["bike_indoors"], args.days):
                    if srng.random() < 0.3:
                        sighting(out, gw, reader_seq, t0 + (d * 1440 + srng.randint(18 * 60, 22 * 60)) * MIN_MS,
                                 "lift_lobby", tag)
            cases = list(plan["cases"])
            case_traits = {}
            if sessions:
                note = f"{ch['kind']} x{ch['packs']}, seen at {ch['seen_at']}, {len(sessions)} sessions"
                first = sessions[0] if carried_up is None else min(sessions[0], carried_up)
                cases.append(("indoor_charging", first, note))
                # What was planted, for the evaluation's misses by trait:
                # the charger's type, packs at once, where its tag is read,
                # the local hour of the first session, people registered.
                case_traits["indoor_charging"] = {
                    "charger": ch["kind"], "packs": str(ch["packs"]), "seen_at": ch["seen_at"],
                    "start_hour": str((sessions[0] % 1440) // 60),
                    "registered": str(plan["registered"])}
            if "bike_indoors" in plan:
                cases.append(("bike_indoors", plan["bike_indoors"] * 1440, "taken up, charged elsewhere"))
            if "leak" in plan:
                cases.append(("leak", plan["leak"][0] * 1440, f"{plan['leak'][1]:.1f} L/h"))
                # Whole litres per hour, as family A writes it: recall by leak size.
                case_traits["leak"] = {"leak_l_per_h": str(math.floor(plan["leak"][1]))}
            if any(c[0] == "group_rental" for c in cases):
                case_traits["group_rental"] = {"living": str(plan["living"]),
                                               "registered": str(plan["registered"])}
            for kind, minute, note in cases:
                case = {"kind": kind, "entity": key, "start_ms": t0 + minute * MIN_MS, "note": note}
                if case_traits.get(kind):
                    case["traits"] = case_traits[kind]
                truth["cases"].append(case)
            traits = list(plan["traits"]) + [c[0] for c in cases]
            if traits:
                truth["traits"][key] = traits
            print(f"\rflat {i + 1}/{len(flats)}", end="", file=sys.stderr, flush=True)
        n = out.write(os.path.join(args.out, "recording.jsonl"))
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    with open(os.path.join(args.out, "register.json"), "w") as f:
        json.dump(register, f, indent=1)
    print(f"\nfamily B seed {args.seed}: {args.flats} flats, {args.days} days, {n} lines, "
          f"{len(truth['cases'])} planted cases -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

"""One flat of family B, minute by minute.

Electricity comes from richardsonpy (the Richardson/CREST stochastic
occupancy and appliance model): its occupancy chain gives active occupants
per 10 minutes, its appliance and lighting model the 1-minute load. Electric
space and water heating are switched off in the model (``prev_heat_dev``)
and added here as the devices Chinese rental flats have (split air
conditioners, storage water heaters, oil heaters, blankets). Water and gas
are drawn from the model's active occupancy: showers, flushes, cooking and
washing happen only when someone is awake at home.

Planted cases (e-bike charging, group rental, leaks, three-in-one machines)
are labelled from what was planted, never from any detector setting.
"""

import os
import random

import numpy as np
import richardsonpy
import richardsonpy.classes.appliance as app_model
import richardsonpy.classes.lighting as light_model
import richardsonpy.classes.occupancy as occ_model
import richardsonpy.classes.stochastic_el_load_wrapper as wrapper
import richardsonpy.functions.load_radiation as loadrad

MIN_PER_DAY = 1440
_SRC = os.path.dirname(richardsonpy.__file__)
_APPLIANCES = os.path.join(_SRC, "inputs", "Appliances.csv")
_BULBS = os.path.join(_SRC, "inputs", "LightBulbs.csv")
# Annual demand the model scales its appliances to, flats (MFH), by occupants.
_ANNUAL_KWH = {1: 1500, 2: 2200, 3: 2800, 4: 3200, 5: 3600}
_IRRADIANCE = None


def irradiance_day(doy):
    """Global horizontal irradiance of day-of-year ``doy`` (0-based), 1-min."""
    global _IRRADIANCE
    if _IRRADIANCE is None:
        q_dir, q_dif = loadrad.get_rad_from_try_path()
        _IRRADIANCE = np.asarray(q_dir) + np.asarray(q_dif)
    d = doy % 365
    return np.interp(np.arange(MIN_PER_DAY), np.arange(24) * 60,
                     _IRRADIANCE[d * 24:(d + 1) * 24])


def model_days(occupants, days, first_weekday, first_doy, seed):
    """Runs richardsonpy for ``days`` days of a household of ``occupants``
    (1-5): returns (load W per minute, active occupants per minute)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    occ = occ_model.Occupancy(number_occupants=occupants,
                              initial_day=first_weekday, nb_days=days)
    apps = app_model.Appliances(_APPLIANCES,
                                annual_consumption=0.91 * _ANNUAL_KWH[occupants],
                                randomize_appliances=True, prev_heat_dev=True)
    lights = light_model.load_lighting_profile(filename=_BULBS, index=0)
    sim = wrapper.ElectricityProfile(apps, lights)
    load, active = [], []
    for d in range(days):
        weekday = (first_weekday - 1 + d) % 7 + 1
        occ_day = occ.occupancy[144 * d:144 * (d + 1)]
        p, _, _ = sim.power_sim(irradiation=irradiance_day(first_doy + d),
                                weekend=weekday in (6, 7), day=(first_doy + d) % 365,
                                occupancy=occ_day)
        load.append(np.asarray(p, dtype=float))
        active.append(np.repeat(np.asarray(occ_day, dtype=float), 10))
    return np.concatenate(load), np.concatenate(active)


# ---------------------------------------------------------------- chargers

def charger_session(kind, rng, packs=1, top_up=False):
    """Minute powers (W) of one e-bike charge from battery physics.

    lead-acid: bulk (constant current, power rising with voltage),
    absorption (constant voltage, current decaying), float (a few W);
    lithium: CC plateau then a CV tail of 5-25 min; fast: a 300-450 W CC
    lithium charger. ``packs`` charge in parallel; a top-up starts from a
    part-full pack and lasts under an hour.
    """
    out = []
    if kind == "lead_acid":
        bulk_w = rng.uniform(90, 140)
        bulk = rng.randint(120, 330)
        absorb = rng.randint(60, 150)
        flt = rng.randint(30, 180)
        if top_up:
            bulk, absorb, flt = rng.randint(10, 30), rng.randint(10, 20), rng.randint(0, 10)
        for m in range(bulk):
            out.append(bulk_w * (0.88 + 0.12 * m / max(bulk, 1)))
        for m in range(absorb):
            out.append(bulk_w * np.exp(-m / (absorb / 3.0)))
        out.extend(rng.uniform(3, 8) for _ in range(flt))
    else:
        cc_w = rng.uniform(300, 450) if kind == "fast" else rng.uniform(120, 320)
        cc = rng.randint(40, 100) if kind == "fast" else rng.randint(90, 300)
        tail = rng.randint(5, 25)
        if top_up:
            cc = rng.randint(15, 40)
        for m in range(cc):
            out.append(cc_w * (0.95 + 0.05 * m / max(cc, 1)))
        for m in range(tail):
            out.append(cc_w * np.exp(-3.0 * (m + 1) / tail))
        out.extend(rng.uniform(0.5, 2.0) for _ in range(rng.randint(0, 30)))
    arr = np.asarray(out)
    if packs > 1:
        other = charger_session(kind, rng, 1, top_up)
        n = max(len(arr), len(other))
        arr = np.pad(arr, (0, n - len(arr))) + np.pad(other, (0, n - len(other)))
    return arr


def charge_start_minute(rng):
    """Start minute of the day: evening, after midnight, or midday."""
    r = rng.random()
    if r < 0.55:
        return rng.randint(18 * 60, 23 * 60 + 30)
    if r < 0.75:
        return rng.randint(0, 2 * 60 + 30)
    return rng.randint(12 * 60, 16 * 60 + 30)


# ---------------------------------------------------------------- confounders

def add_block(arr, start, length, watts):
    """Adds ``watts`` (scalar or array) over ``length`` minutes from ``start``,
    clipped to the array."""
    a, b = max(start, 0), min(start + length, len(arr))
    if b <= a:
        return
    if np.isscalar(watts):
        arr[a:b] += watts
    else:
        arr[a:b] += np.asarray(watts)[a - start:b - start]


def night_ac_heating(rng, day, winter):
    """A split AC on at bedtime: high, then sleep-mode steps down; compressor
    cycling (winter heating or summer cooling)."""
    w = np.zeros(MIN_PER_DAY + 600)
    on = 22 * 60 + rng.randint(-60, 90)
    off = MIN_PER_DAY + 6 * 60 + rng.randint(0, 120)
    high = rng.uniform(900, 1500) if winter else rng.uniform(600, 1100)
    for m in range(on, off):
        stage = (m - on) // 90
        level = high * max(0.35, 1.0 - 0.2 * stage)
        cyc = 1.0 if (m // rng.choice((7, 9, 11))) % 3 else 0.25
        w[m] = level * cyc
    return w


def thermostat(rng, length, on_w, period, duty, phase=None):
    """A thermostat cycling ``on_w`` with ``period`` minutes and ``duty``."""
    ph = rng.randint(0, period) if phase is None else phase
    t = (np.arange(length) + ph) % period
    return np.where(t < duty * period, on_w, 0.0)

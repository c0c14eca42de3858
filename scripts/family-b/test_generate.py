"""Family B on a tiny district: the files the evaluator reads are there and
well formed, meters are quantised, records are in time order, and a seed
gives the same district twice.

Run: target/family-b-venv/bin/python -m unittest discover -s scripts/family-b
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def generate(out, *extra):
    subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), "--flats", "40",
                    "--days", "3", "--seed", "7", "--start", "2027-02-01", "--out", out,
                    *extra], check=True, capture_output=True)


class TinyDistrict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.a = os.path.join(cls.tmp.name, "a")
        cls.b = os.path.join(cls.tmp.name, "b")
        cls.free = os.path.join(cls.tmp.name, "free")
        generate(cls.a)
        generate(cls.b)
        generate(cls.free, "--case-free")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def read(self, d, name):
        with open(os.path.join(d, name)) as f:
            return f.read()

    def test_same_seed_same_district(self):
        for name in ("recording.jsonl", "truth.json", "register.json"):
            self.assertEqual(self.read(self.a, name), self.read(self.b, name), name)

    def test_records_are_time_ordered_and_meters_quantised(self):
        last, kinds = 0, set()
        for line in self.read(self.a, "recording.jsonl").splitlines():
            rec = json.loads(line)
            (what, body), = rec.items()
            self.assertIn(what, ("reading", "event"))
            self.assertGreaterEqual(body["ts"], last)
            last = body["ts"]
            if what == "reading":
                kinds.add(body["kind"])
                v = body["values"]
                if body["kind"] == "electricity_meter":
                    self.assertAlmostEqual(v["energy_kwh"] * 100, round(v["energy_kwh"] * 100), 6)
                elif body["kind"] == "water_meter":
                    self.assertAlmostEqual(v["flow_l"], round(v["flow_l"]), 6)
                else:
                    self.assertAlmostEqual(v["volume_m3"] * 100, round(v["volume_m3"] * 100), 6)
        self.assertEqual(kinds, {"electricity_meter", "water_meter", "gas_meter"})

    def test_truth_and_register_cover_the_flats(self):
        truth = json.loads(self.read(self.a, "truth.json"))
        register = json.loads(self.read(self.a, "register.json"))
        flats = {f["flat"] for f in register["flats"]}
        self.assertEqual(len(flats), 40)
        self.assertTrue(truth["cases"], "40 flats should hold at least one planted case")
        for case in truth["cases"]:
            self.assertIn(case["entity"], flats)
            self.assertGreaterEqual(case["start_ms"], truth["start_ms"])
        for tag in register["tags"]:
            self.assertIn(tag["flat"], flats)

    def test_charging_cases_carry_what_was_planted(self):
        # The evaluation counts misses by these traits (charger type, start
        # hour, ...); without them every miss fell under "none".
        truth = json.loads(self.read(self.a, "truth.json"))
        charging = [c for c in truth["cases"] if c["kind"] == "indoor_charging"]
        self.assertTrue(charging, "40 flats should hold at least one charging case")
        for case in charging:
            t = case["traits"]
            self.assertIn(t["charger"], ("lead_acid", "lithium", "fast"))
            self.assertIn(t["packs"], ("1", "2"))
            self.assertIn(t["seen_at"], ("gate", "lift_lobby"))
            self.assertIn(int(t["start_hour"]), range(24))
            self.assertGreaterEqual(int(t["registered"]), 1)

    def test_a_charger_read_indoors_begins_when_its_battery_first_went_up(self):
        # A lift sighting 2-12 min before the first charge is the hazard
        # itself; were the case to begin at the charge, the evaluator would
        # count that alert as too early.
        truth = json.loads(self.read(self.a, "truth.json"))
        tags = {t["identity"]: t["flat"]
                for t in json.loads(self.read(self.a, "register.json"))["tags"]}
        first_up = {}
        for line in self.read(self.a, "recording.jsonl").splitlines():
            ev = json.loads(line).get("event")
            if ev and ev["type"] == "sighting" and ev["location"] == "lift_lobby":
                first_up.setdefault(tags[ev["identity"]], ev["ts"])
        read_up = [c for c in truth["cases"] if c["kind"] == "indoor_charging"
                   and c["traits"]["seen_at"] == "lift_lobby" and c["entity"] in first_up]
        self.assertTrue(read_up, "40 flats should hold a charger read in the lift lobby")
        for case in read_up:
            self.assertLessEqual(case["start_ms"], first_up[case["entity"]], case)

    def test_leaks_and_group_rentals_carry_their_size(self):
        truth = json.loads(self.read(self.a, "truth.json"))
        kinds = {c["kind"] for c in truth["cases"]}
        self.assertTrue({"leak", "group_rental"} <= kinds, kinds)
        for case in truth["cases"]:
            if case["kind"] == "leak":
                # The note rounds to 0.1 L/h; the trait is the whole litres.
                lph = float(case["note"].split()[0])
                self.assertIn(int(case["traits"]["leak_l_per_h"]),
                              (int((lph - 0.05) // 1), int(lph // 1)))
            if case["kind"] == "group_rental":
                self.assertGreater(int(case["traits"]["living"]),
                                   int(case["traits"]["registered"]))

    def test_case_free_plants_nothing_but_keeps_confounders(self):
        truth = json.loads(self.read(self.free, "truth.json"))
        self.assertEqual(truth["cases"], [])
        self.assertTrue(any(truth["traits"].values()))


if __name__ == "__main__":
    unittest.main()

"""Rail share beyond 500 km: the road -> rail rule, the 500 km bound, the tonne-km variant, roll-ups,
the target, and an independent recomputation on a generated set of shipments."""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from jobs.kpi.rail_share import classify_shipments, rail_share
from schemas.reference_tables import rule_params
from tests.jobs.kpi.helpers import by, d, reference, silver

MINES = [
    {"mine_id": "M1", "company_id": "C1", "mine_type": "underground", "banner": "Zhungeer"},
    {"mine_id": "M2", "company_id": "C1", "mine_type": "open_pit", "banner": "Yijinhuoluo"},
    {"mine_id": "M3", "company_id": "C2", "mine_type": "underground", "banner": "Etuoke"},
]


def ship(sid, mine, product, tonnes, day="2026-09-10", road=0.0, rail=0.0, belt=0.0):
    legs = "|".join(f"{m}:{km:g}" for m, km in (("road", road), ("belt", belt), ("rail", rail)) if km > 0)
    return {"shipment_id": sid, "mine_id": mine, "product": product, "tonnes": tonnes, "ship_date": d(day),
            "distance_km": road + rail + belt, "legs": legs, "road_km": road, "rail_km": rail, "belt_km": belt,
            "mode_pattern": legs.replace("|", ">"), "event_date_local": d(day)}


SHIPMENTS = [
    ship("S1", "M1", "raw_coal", 1000.0, road=35.0, rail=1120.0),   # 1,155 km, rail 97 % of km -> rail
    ship("S2", "M1", "clean_coal", 2000.0, road=600.0),             # 600 km road only -> not rail
    ship("S3", "M1", "coke", 500.0, rail=800.0),                    # rail only -> rail
    ship("S4", "M1", "raw_coal", 3000.0, road=300.0, rail=250.0),   # 550 km, rail 45 % < 50 % -> not rail
    ship("S5", "M1", "raw_coal", 4000.0, road=200.0, rail=300.0),   # exactly 500 km -> not beyond 500 km
    ship("S6", "M2", "raw_coal", 1500.0, belt=5.0, rail=700.0),     # belt -> rail, 705 km -> rail
    ship("S7", "M3", "raw_coal", 10000.0, road=80.0),               # short haul -> out of scope
    ship("S8", "M1", "raw_coal", 1000.0, road=260.0, rail=260.0),   # 520 km, rail exactly 50 % -> rail
]


@pytest.fixture(scope="module")
def params(spark):
    return rule_params(reference(spark, "rule_parameters"), "rail_share", on_date=d("2026-09-10"))


@pytest.fixture(scope="module")
def refs(spark):
    return {"mines": silver(spark, "mines", MINES), "targets": reference(spark, "plan_targets")}


def test_rule_parameters_are_versioned_data(params):
    assert params == {"long_haul_threshold_km": 500.0, "long_haul_bound_inclusive": 0.0,
                      "multimodal_rail_min_km_share": 0.5, "rule_version": "rules_v2026.1"}


@pytest.fixture(scope="module")
def monthly(spark, refs, params):
    classified = classify_shipments(silver(spark, "shipments", SHIPMENTS), **params)
    return by(rail_share(classified, mines=refs["mines"], targets=refs["targets"]).collect(), "scope_level", "scope_id")


def test_mine_rail_share_tonnes_and_tonne_km(monthly):
    # M1 long hauls (> 500 km): S1 1,000 t rail, S2 2,000 road, S3 500 rail, S4 3,000 (45 % rail km: road),
    # S8 1,000 (50 % rail km: rail). S5 is exactly 500 km: not beyond 500 -> excluded.
    # tonnes: rail 1,000 + 500 + 1,000 = 2,500 of 7,500 -> 33.33 %
    # tonne-km: all 1,000x1,155 + 2,000x600 + 500x800 + 3,000x550 + 1,000x520 = 4,925,000
    #           rail 1,000x1,120 + 0 + 500x800 + 3,000x250 + 1,000x260 = 2,530,000 -> 51.37 %
    m1 = monthly[("mine", "M1")]
    assert m1.month_start == d("2026-09-01") and m1.long_haul_shipments == 5
    assert (m1.long_haul_t, m1.rail_t) == (Decimal("7500"), Decimal("2500"))
    assert m1.rail_share_tonnes_pct == pytest.approx(100 / 3)
    assert (m1.long_haul_tonne_km, m1.rail_tonne_km) == (4_925_000.0, 2_530_000.0)
    assert m1.rail_share_tonne_km_pct == pytest.approx(2_530_000 / 4_925_000 * 100)
    assert m1.rule_version == "rules_v2026.1" and m1.target_version == "plan_targets_v2024.1"


def test_rollups_and_target(monthly):
    # M2: S6 belt 5 + rail 700 -> rail, 1,500 of 1,500 t -> 100 %.
    # C1 = M1 + M2: 4,000 rail of 9,000 t -> 44.44 %; target 80 % -> gap 35.56 points, not met.
    # Zhungeer = M1 only; Yijinhuoluo = M2; city = C1 (M3's haul is short, out of scope).
    assert monthly[("mine", "M2")].rail_share_tonnes_pct == pytest.approx(100.0)
    c1 = monthly[("company", "C1")]
    assert c1.rail_share_tonnes_pct == pytest.approx(400 / 9)
    assert c1.target_rail_share_pct == 80.0 and c1.gap_to_target_pct_points == pytest.approx(80 - 400 / 9)
    assert c1.meets_target is False and monthly[("mine", "M2")].meets_target is True
    assert monthly[("banner", "Zhungeer")].long_haul_t == Decimal("7500")
    assert monthly[("city", "ordos")].rail_t == Decimal("4000")
    assert ("company", "C2") not in monthly and ("mine", "M3") not in monthly


def test_inclusive_bound_and_per_shipment_classes(spark, refs, params):
    # With the bound inclusive, S5 (exactly 500 km; 300 of 500 km by rail = 60 %) joins as rail:
    # M1 = (2,500 + 4,000) / (7,500 + 4,000) = 6,500 / 11,500 = 56.52 %.
    inclusive = {**params, "long_haul_bound_inclusive": 1.0, "rule_version": "test_inclusive"}
    classified = classify_shipments(silver(spark, "shipments", SHIPMENTS), **inclusive)
    cls = by(classified.collect(), "shipment_id")
    assert [cls[s].counted_as_rail for s in ("S1", "S2", "S3", "S4", "S5", "S6", "S8")] == [True, False, True, False, True, True, True]
    assert [cls[s].mode_class for s in ("S1", "S2", "S3", "S6")] == ["multimodal", "road_only", "rail_only", "multimodal"]
    assert cls["S5"].in_scope and not cls["S7"].in_scope
    local = spark.createDataFrame(list(cls.values()), classified.schema)
    m1 = by(rail_share(local, mines=refs["mines"], targets=refs["targets"]).collect(), "scope_level", "scope_id")[("mine", "M1")]
    assert m1.rail_share_tonnes_pct == pytest.approx(6500 / 11500 * 100)


def _generated_shipments(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pattern = rng.choice(["road", "rail", "road>rail", "belt>rail", "road>rail_short"])
        road = rng.choice([0.0, 20.0, 60.0, 150.0, 320.0, 700.0]) if "road" in pattern else 0.0
        if pattern == "road":
            road = rng.choice([80.0, 450.0, 520.0, 700.0])
        rail = rng.choice([150.0, 480.0, 600.0, 1100.0]) if "rail" in pattern else 0.0
        belt = 5.0 if pattern.startswith("belt") else 0.0
        out.append(ship(f"G{i}", rng.choice(["M1", "M2", "M3"]), rng.choice(["raw_coal", "clean_coal", "coke"]),
                        float(rng.randint(1, 60) * 50), day=f"2026-{rng.choice([9, 10]):02d}-{rng.randint(1, 28):02d}",
                        road=road, rail=rail, belt=belt))
    return out


def test_rail_share_recomputed_independently(spark, refs, params):
    # Cross-check on a generated set: recompute the city share per month in plain Python with the
    # stated rule (beyond 500 km; rail when rail km >= 50 % of km) and compare.
    shipments = _generated_shipments(300)
    expected: dict = {}
    for s in shipments:
        if s["distance_km"] > 500:
            key = s["ship_date"].replace(day=1)
            tot, rail = expected.get(key, (0.0, 0.0))
            is_rail = s["rail_km"] > 0 and s["rail_km"] >= 0.5 * s["distance_km"]
            expected[key] = (tot + s["tonnes"], rail + (s["tonnes"] if is_rail else 0.0))
    classified = classify_shipments(silver(spark, "shipments", shipments), **params)
    got = {r.month_start: r for r in rail_share(classified, mines=refs["mines"], targets=refs["targets"]).collect()
           if r.scope_level == "city"}
    assert set(got) == set(expected)
    for month, (tot, rail) in expected.items():
        assert float(got[month].long_haul_t) == pytest.approx(tot)
        assert got[month].rail_share_tonnes_pct == pytest.approx(rail / tot * 100)

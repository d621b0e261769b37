"""Small cases worked out by hand: the reading helpers the other tests rely on, and two generator parts."""
from __future__ import annotations

import pytest

from data_samples.fleet import Booking
from data_samples.geo import gcj02_to_wgs84, haversine_km, wgs84_to_gcj02

from tests.data_samples.landing import decode, in_range, pack_energy_kwh


def test_pack_energy_of_three_frames():
    # Frame 1 at t = 0 s:  raw voltage 6000 -> 600.0 V; raw current 31000 -> 31000 * 0.1 - 3000 = +100.0 A
    #                      (discharge). Holds for 60 s: 600 * 100 * 60 = 3,600,000 J = 1.000 kWh.
    # Frame 2 at t = 60 s: 610.0 V, raw 29500 -> 2950 - 3000 = -50.0 A (regeneration). Holds for 30 s:
    #                      610 * -50 * 30 = -915,000 J = -0.2541667 kWh.
    # Frame 3 at t = 90 s: only closes the second interval.
    # Total: 1.0 - 0.2541667 = 0.7458333 kWh.
    samples = [(0, 6000, 31000), (60, 6100, 29500), (90, 6000, 30000)]
    assert pack_energy_kwh(samples) == pytest.approx(0.7458333, abs=1e-6)


def test_pack_energy_skips_an_interval_with_a_sentinel():
    # The first interval has an invalid voltage (0xFFFF): it is skipped, leaving
    # 600 V * 100 A * 60 s = 1 kWh from the second interval.
    samples = [(0, 0xFFFF, 31000), (60, 6000, 31000), (120, 6000, 31000)]
    assert pack_energy_kwh(samples) == pytest.approx(1.0)


def test_contract_decoding():
    assert decode("total_current", 31200) == pytest.approx(120.0)   # 3120.0 - 3000
    assert decode("total_current", 30000) == pytest.approx(0.0)
    assert decode("total_current", 28000) == pytest.approx(-200.0)  # charging
    assert decode("speed", 352) == pytest.approx(35.2)
    assert decode("soc", 0xFE) is None and decode("odometer", 0xFFFFFFFF) is None
    assert in_range("soc", 100) and in_range("soc", 0xFF) and not in_range("soc", 130)
    assert not in_range("speed", 3000)                                # 300 km/h > valid max 220


def test_gcj02_shift_and_inverse_near_ordos():
    lat, lon = 39.6, 110.0
    g_lat, g_lon = wgs84_to_gcj02(lat, lon)
    shift_m = haversine_km(lat, lon, g_lat, g_lon) * 1000
    assert 100 < shift_m < 1000            # GCJ-02 moves points by a few hundred metres in China
    back = gcj02_to_wgs84(g_lat, g_lon)
    assert haversine_km(lat, lon, *back) * 1000 < 0.5


def test_booking_finds_the_first_gap():
    # Busy 100..200 s, margin 60 s between users.
    # A 30 s job at t=0 ends at 30, +60 margin = 90 <= 100: it fits before.
    # A 50 s job at t=0 would end at 50 + 60 = 110 > 100: the first start is 200 + 60 = 260.
    b = Booking()
    b.add(100, 200)
    assert b.earliest(0, 30) == 0
    assert b.earliest(0, 50) == 260
    b.add(300, 400)
    # After 260 a 50 s job would need 260 + 50 + 60 = 370 <= 300? No -> next start 400 + 60 = 460.
    assert b.earliest(0, 50) == 460

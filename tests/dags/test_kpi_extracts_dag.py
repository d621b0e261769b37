"""kpi_extracts: which months a run builds, from its trigger (the DAG body is jobs.delivery.extracts, tested in
tests/jobs/delivery/test_extracts.py)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pendulum

DAGS = str(Path(__file__).resolve().parents[2] / "dags")


def _module():
    if DAGS not in sys.path:                      # what Airflow does for its DAG folder
        sys.path.insert(0, DAGS)
    return importlib.import_module("kpi_extracts")


def _event(dag_id, logical_date):
    return SimpleNamespace(source_dag_id=dag_id, source_dag_run=SimpleNamespace(logical_date=logical_date))


def test_months_from_kpi_monthly_runs_only():
    m = _module()
    assets = importlib.import_module("assets")
    rail, mine = assets.GOLD["gold_rail_share_monthly"], assets.GOLD["gold_mine_energy_monthly"]
    # kpi_monthly fires on the 1st, 06:00 local, and rebuilds the month before
    dec_1 = pendulum.datetime(2026, 12, 1, 6, tz="Asia/Shanghai")
    events = {rail: [_event("kpi_monthly", dec_1), _event("kpi_daily", dec_1)], mine: [_event("kpi_monthly", dec_1)]}
    assert m.months_to_extract({}, None, events, None) == ["2026-11"]
    # two queued kpi_monthly runs (a backfill): both months, once each
    nov_1 = pendulum.datetime(2026, 11, 1, 6, tz="Asia/Shanghai")
    events[rail].append(_event("kpi_monthly", nov_1))
    assert m.months_to_extract({}, None, events, None) == ["2026-10", "2026-11"]
    # triggered by kpi_daily only: nothing (the task skips)
    assert m.months_to_extract({}, None, {rail: [_event("kpi_daily", dec_1)]}, None) == []


def test_month_param_and_manual_runs():
    m = _module()
    assert m.months_to_extract({"month": "2026-07"}, None, {}, None) == ["2026-07"]
    # manual runs: 2026-12-01 09:00 local -> November; exactly 00:00 on the 1st local (11-30 16:00 UTC) is
    # the end of November, as in kpi_monthly's one-second step back -> October
    assert m.months_to_extract({}, pendulum.datetime(2026, 12, 1, 1, tz="UTC"), None, None) == ["2026-11"]
    assert m.months_to_extract({}, pendulum.datetime(2026, 11, 30, 16, tz="UTC"), None, None) == ["2026-10"]
    # no logical date (asset-triggered runs have none): the time the run was queued
    assert m.months_to_extract({}, None, None, pendulum.datetime(2027, 1, 5, tz="UTC")) == ["2026-12"]

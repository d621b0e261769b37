"""Alerts delivered to a real SMTP sink and a real HTTP receiver on 127.0.0.1, from a real Airflow task
failure (``airflow dags test`` with the callback of ``dags/_defaults.py``) and from the freshness check."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.platform import alerts
from jobs.platform.settings import Settings, get_settings
from tests.sinks import HttpReceiver, SmtpSink

REPO = Path(__file__).resolve().parents[3]


def _settings(tmp_path: Path, **alert) -> Settings:
    return Settings(lake_root=tmp_path / "lake", landing_root=tmp_path / "landing", **alert)


def _gate_error():
    from jobs.quality.validation import CRITICAL, ExpectationOutcome, QualityGateError, QualityResult

    soc = ExpectationOutcome("expect_column_values_to_be_between", "soc_pct", CRITICAL, False,
                             {"column": "soc_pct", "min_value": 0, "max_value": 100}, element_count=10,
                             missing_count=0, unexpected_count=2, unexpected_percent=20.0, sample_values=[101.0, 120.0])
    vin = ExpectationOutcome("expect_column_values_to_not_be_null", "vin", CRITICAL, False, {"column": "vin"},
                             element_count=10, missing_count=0, unexpected_count=1, unexpected_percent=10.0)
    result = QualityResult("silver_telematics", "gate_test", [dt.date(2026, 11, 3)], "v1", 10, [soc, vin],
                           dt.datetime(2026, 11, 4, tzinfo=dt.timezone.utc), 0.1, 0.1)
    return QualityGateError(result)


def _subject(message) -> str:
    """The Subject header unfolded (long headers are folded over lines: CRLF + space)."""
    return re.sub(r"\r?\n", "", str(message["Subject"]))


def _body(message) -> str:
    """The text body, quoted-printable decoded."""
    return message.get_payload(decode=True).decode()


@pytest.fixture
def alert_env(monkeypatch):
    """SMTP sink + HTTP receiver, configured through the environment as a deployment would."""
    with SmtpSink() as smtp, HttpReceiver() as hook:
        monkeypatch.setenv("COALCHAIN_ALERT_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("COALCHAIN_ALERT_SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("COALCHAIN_ALERT_SMTP_FROM", "airflow@coalchain.test")
        monkeypatch.setenv("COALCHAIN_ALERT_SMTP_TO", json.dumps(["ops@coalchain.test", "oncall@coalchain.test"]))
        monkeypatch.setenv("COALCHAIN_ALERT_WEBHOOK_URL", hook.url)
        get_settings.cache_clear()
        try:
            yield smtp, hook
        finally:
            get_settings.cache_clear()


PROBE_DAG = """
import pendulum
from _defaults import DEFAULT_ARGS
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

from tests.jobs.platform.test_alerts import _gate_error


@dag(dag_id="alert_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
     default_args={**DEFAULT_ARGS, "retries": 0})
def alert_probe():
    @task
    def load_day():
        raise RuntimeError("landing file telematics/2026-11-03/frames_g00.jsonl.gz: disk full")

    @task
    def quality_gate():
        # as kpi_daily does: bad data is not retried
        gate_error = _gate_error()
        raise AirflowFailException(str(gate_error)) from gate_error

    load_day()
    quality_gate()


alert_probe()
"""


def test_a_failed_task_and_a_blocked_gate_alert_through_a_real_airflow_run(alert_env, tmp_path):
    """``airflow dags test`` of a two-task DAG in its own DAG folder, with the project's default arguments (and
    so its failure callback) and the alert channels configured in the environment."""
    smtp, hook = alert_env
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "alert_probe.py").write_text(PROBE_DAG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "dags"))),
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "COALCHAIN_LAKE_ROOT": str(tmp_path / "lake"),
           "COALCHAIN_LANDING_ROOT": str(tmp_path / "landing")}
    airflow = Path(sys.executable).with_name("airflow")
    out = subprocess.run([str(airflow), "dags", "test", "alert_probe", "2026-11-04T01:00:00+00:00"],
                         capture_output=True, text=True, env=env, timeout=600)
    log = out.stdout + out.stderr
    assert "state=failed" in log, log[-3000:]

    # two failed tasks: two e-mails to both recipients, two webhook posts
    assert len(smtp.messages) == 2 and len(hook.requests) == 2
    mails = {_subject(m): m for _, _, m in smtp.messages}
    posts = {p["json"]["task_id"]: p["json"] for p in hook.requests}
    assert all(rcpts == ["ops@coalchain.test", "oncall@coalchain.test"] for _, rcpts, _ in smtp.messages)
    assert all(p["content_type"] == "application/json" and p["path"] == "/hooks/T0KEN-secret" for p in hook.requests)

    failed = posts["load_day"]
    assert failed["kind"] == "task_failed" and failed["dag_id"] == "alert_probe" and failed["day"] == "2026-11-04"
    assert "disk full" in failed["error"] and failed["failing_expectations"] == []
    mail = mails["[coalchain] task failed: alert_probe.load_day day 2026-11-04"]
    body = _body(mail)
    assert "DAG:           alert_probe" in body and "task:          load_day" in body and "disk full" in body

    gate = posts["quality_gate"]
    assert gate["kind"] == "quality_gate_blocked" and gate["dag_id"] == "alert_probe"
    assert gate["blocked_days"] == ["2026-11-03"]
    # the two critical expectations built above, as QualityGateError words them (2 of 10 - 0 missing)
    assert gate["failing_expectations"] == [
        'silver_telematics.soc_pct: expect_column_values_to_be_between {"max_value": 100, "min_value": 0}: '
        "2 of 10 values unexpected (20 %); sample values [101.0, 120.0]",
        "silver_telematics.vin: expect_column_values_to_not_be_null {}: 1 of 10 values unexpected (10 %)",
    ]
    mail = mails["[coalchain] quality gate blocked gold: alert_probe.quality_gate day 2026-11-04"]
    body = _body(mail)
    assert "blocked days:  2026-11-03" in body and "silver_telematics.soc_pct: expect_column_values_to_be_between" in body
    assert "T0KEN-secret" not in log                         # the webhook URL is a secret


def test_the_gate_error_itself_and_the_kpi_daily_wrapping_give_the_same_details():
    gate_error = _gate_error()
    direct = alerts.gate_details(gate_error)
    # build_gold re-raises the gate's text inside its own message (dags/kpi_daily.py)
    wrapped = alerts.gate_details(RuntimeError("gold built for ['2026-11-02..2026-11-02']; blocked for ['2026-11-03']:\n"
                                               + str(gate_error)))
    assert direct == wrapped
    assert direct[1] == ["2026-11-03"] and len(direct[0]) == 2
    assert alerts.gate_details(RuntimeError("disk full")) is None


def test_a_stale_source_alerts_once_listing_every_stale_source(tmp_path):
    from jobs.ingest import freshness

    now = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.timezone.utc)
    landing = tmp_path / "landing"
    ages_h = {"mine_production": 2, "production_plan": 2, "washing": 2, "weighbridge": 2, "charging_sessions": 2,
              "connector_status": 2,
              "shipments": 60, "telematics": 50, "trucks": 30}            # h2_fills: no file at all
    for source, age_h in ages_h.items():
        f = landing / source / "2026-11-09" / "part.csv"
        f.parent.mkdir(parents=True)
        f.write_text("x\n")
        at = (now - dt.timedelta(hours=age_h)).timestamp()
        os.utime(f, (at, at))
    # bookkeeping files do not count as deliveries
    (landing / "telematics" / "_bench_params.json").write_text("{}")
    with SmtpSink() as smtp, HttpReceiver() as hook:
        settings = _settings(tmp_path, alert_smtp_host="127.0.0.1", alert_smtp_port=smtp.port,
                             alert_smtp_to=["ops@coalchain.test"], alert_webhook_url=hook.url,
                             stale_source_hours=36, stale_source_hours_per_source={"shipments": 72, "trucks": 24})
        outcome = freshness.check_and_alert(settings, now, dag_id="source_freshness", task_id="check_sources")
    # limits: 36 h for event sources; shipments 72 h (60 h old: fresh); trucks (a dimension) 24 h: 30 h old
    assert outcome["stale"] == ["h2_fills", "telematics", "trucks"]
    assert outcome["alerted_by"] == ["email", "webhook"]
    (post,) = [r["json"] for r in hook.requests]
    assert post["kind"] == "stale_source" and post["dag_id"] == "source_freshness" and post["task_id"] == "check_sources"
    assert post["day"] == "2026-11-10"                      # 12:00 UTC = 20:00 in Asia/Shanghai
    assert post["stale_sources"] == [
        {"source": "h2_fills", "last_file_at": None, "hours_since": None, "limit_hours": 36.0},
        {"source": "telematics", "last_file_at": "2026-11-08T10:00:00+00:00", "hours_since": 50.0, "limit_hours": 36.0},
        {"source": "trucks", "last_file_at": "2026-11-09T06:00:00+00:00", "hours_since": 30.0, "limit_hours": 24.0},
    ]
    (_, _, mail), = smtp.messages
    assert _subject(mail) == "[coalchain] stale source: source_freshness.check_sources day 2026-11-10: h2_fills, telematics, trucks"
    assert "telematics: last landing file 2026-11-08T10:00:00+00:00, 50.0 h ago (limit 36.0 h)" in _body(mail)


def test_an_unknown_source_in_the_staleness_limits_is_an_error(tmp_path):
    from jobs.ingest import freshness

    with pytest.raises(ValueError, match="names unknown source.s. telematic;"):
        freshness.limits_hours(_settings(tmp_path, stale_source_hours_per_source={"telematic": 5}))


def test_a_failing_webhook_does_not_stop_the_email_and_names_no_secret(tmp_path, caplog):
    alert = alerts.Alert(kind=alerts.TASK_FAILED, dag_id="kpi_daily", task_id="build_gold", day="2026-11-03")
    with SmtpSink() as smtp, HttpReceiver(status=500) as hook:
        settings = _settings(tmp_path, alert_smtp_host="127.0.0.1", alert_smtp_port=smtp.port,
                             alert_smtp_to=["ops@coalchain.test"], alert_webhook_url=hook.url)
        with pytest.raises(alerts.AlertDeliveryError, match="webhook POST answered HTTP 500") as err:
            alerts.notify(alert, settings)
    assert len(smtp.messages) == 1 and len(hook.requests) == 1
    assert "T0KEN-secret" not in str(err.value) and "T0KEN-secret" not in caplog.text
    assert "T0KEN-secret" not in repr(settings)


def test_no_channel_configured_sends_nothing(tmp_path):
    alert = alerts.Alert(kind=alerts.TASK_FAILED, dag_id="kpi_daily", task_id="build_gold", day="2026-11-03")
    assert alerts.notify(alert, _settings(tmp_path)) == []
    # recipients without a host, or a host without recipients, is not an e-mail channel
    assert alerts.configured_channels(_settings(tmp_path, alert_smtp_host="127.0.0.1")) == []


def test_every_dag_task_alerts_on_failure():
    from airflow.dag_processing.dagbag import DagBag

    dags = str(REPO / "dags")
    if dags not in sys.path:
        sys.path.insert(0, dags)
    bag = DagBag(dag_folder=dags)
    assert bag.import_errors == {}
    assert {"lake_maintenance", "source_freshness"} <= set(bag.dag_ids)
    for dag_id in bag.dag_ids:
        for t in bag.get_dag(dag_id).tasks:
            callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
            assert alerts.on_task_failure in callbacks, f"{dag_id}.{t.task_id} sends no alert"

"""Alerts: a failed task, a blocked quality gate or a stale source, sent by e-mail and/or a webhook.

Channels come from the settings object (environment ``COALCHAIN_ALERT_*``):

* e-mail: ``alert_smtp_host`` (+ ``_port``, ``_security`` none|starttls|ssl, ``_user``, ``_password``,
  ``_from``, ``_to``): a plain-text message whose subject names the kind, DAG, task and day;
* webhook: ``alert_webhook_url``: the alert as a JSON object POSTed to it (``Alert.payload``); any 2xx
  answer is a delivery.

With neither configured an alert is only logged. The password and the webhook URL (chat webhooks carry
their token in the URL) are secrets: they are never logged or put into an error message.

Airflow calls :func:`on_task_failure` for a task that failed for good (``dags/_defaults.py`` puts it in
every DAG's ``default_args``). A failure caused by the data-quality gate (``QualityGateError``, or the
gate's message carried by the task's exception) becomes a ``quality_gate_blocked`` alert listing the
failing expectations and blocked days; any other failure a ``task_failed`` alert. Stale sources are
found and alerted by ``jobs.ingest.freshness`` (the ``source_freshness`` DAG).

This module imports only the standard library and the settings: DAG files import it at parse time.
"""
from __future__ import annotations

import json
import logging
import re
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage

from jobs.platform.settings import Settings, get_settings

log = logging.getLogger("jobs.platform.alerts")

TASK_FAILED = "task_failed"
QUALITY_GATE_BLOCKED = "quality_gate_blocked"
STALE_SOURCE = "stale_source"
_ERROR_CHARS = 4000                   # of the exception text carried by an alert
_GATE_HEAD = re.compile(r"data-quality gate failed for (\S+) \(event dates: ([^;]*);")


class AlertDeliveryError(RuntimeError):
    """A configured channel could not deliver an alert (the message names the channel, never a secret)."""


@dataclass
class Alert:
    kind: str                                   # task_failed | quality_gate_blocked | stale_source
    dag_id: str | None = None
    task_id: str | None = None
    day: str | None = None                      # the run's day (yyyy-mm-dd); blocked or checked day
    run_id: str | None = None
    logical_date: str | None = None
    try_number: int | None = None
    error: str | None = None                    # the exception's text (truncated)
    failing_expectations: list[str] = field(default_factory=list)   # "<table>.<expectation>: <what failed>"
    blocked_days: list[str] = field(default_factory=list)
    stale_sources: list[dict] = field(default_factory=list)         # source, last_file_at, hours_since, limit_hours

    @property
    def subject(self) -> str:
        where = ".".join(p for p in (self.dag_id, self.task_id) if p) or "coalchain"
        what = {TASK_FAILED: "task failed", QUALITY_GATE_BLOCKED: "quality gate blocked gold",
                STALE_SOURCE: "stale source"}.get(self.kind, self.kind)
        tail = f": {', '.join(s['source'] for s in self.stale_sources)}" if self.stale_sources else ""
        return f"[coalchain] {what}: {where} day {self.day or '-'}{tail}"

    def text(self) -> str:
        lines = [self.subject, "", f"kind:          {self.kind}", f"DAG:           {self.dag_id or '-'}",
                 f"task:          {self.task_id or '-'}", f"day:           {self.day or '-'}"]
        if self.run_id:
            lines.append(f"run:           {self.run_id}")
        if self.logical_date:
            lines.append(f"logical date:  {self.logical_date}")
        if self.try_number is not None:
            lines.append(f"try:           {self.try_number}")
        if self.blocked_days:
            lines.append(f"blocked days:  {', '.join(self.blocked_days)}")
        if self.failing_expectations:
            lines += ["", "failing expectations:"] + [f"  - {e}" for e in self.failing_expectations]
        for s in self.stale_sources:
            lines.append(f"  - {s['source']}: last landing file {s['last_file_at'] or 'never'}, "
                         f"{s['hours_since'] if s['hours_since'] is not None else '-'} h ago "
                         f"(limit {s['limit_hours']} h)")
        if self.error:
            lines += ["", "error:", self.error]
        return "\n".join(lines) + "\n"

    def payload(self) -> dict:
        return {"subject": self.subject, **asdict(self)}


# --- delivery ------------------------------------------------------------------------------------------
def configured_channels(settings: Settings) -> list[str]:
    channels = []
    if settings.alert_smtp_host and settings.alert_smtp_to:
        channels.append("email")
    if settings.alert_webhook_url is not None:
        channels.append("webhook")
    return channels


def send_email(alert: Alert, settings: Settings) -> None:
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = settings.alert_smtp_from
    message["To"] = ", ".join(settings.alert_smtp_to)
    message.set_content(alert.text())
    host, port, timeout_s = settings.alert_smtp_host, settings.alert_smtp_port, settings.alert_timeout_s
    try:
        if settings.alert_smtp_security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout_s, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout_s)
        with client:
            if settings.alert_smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.alert_smtp_user:
                password = settings.alert_smtp_password.get_secret_value() if settings.alert_smtp_password else ""
                client.login(settings.alert_smtp_user, password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # the exception text can echo the server's reply, never our password; keep it short anyway
        raise AlertDeliveryError(f"e-mail via {host}:{port} failed: {type(exc).__name__}: {str(exc)[:200]}") from None


def post_webhook(alert: Alert, settings: Settings) -> None:
    body = json.dumps(alert.payload(), default=str).encode()
    request = urllib.request.Request(settings.alert_webhook_url.get_secret_value(), data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "coalchain-alerts"})
    try:
        with urllib.request.urlopen(request, timeout=settings.alert_timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:   # the URL is a secret: name only the kind of failure
        raise AlertDeliveryError(f"webhook POST failed: {type(exc).__name__}") from None
    if not 200 <= status < 300:
        raise AlertDeliveryError(f"webhook POST answered HTTP {status}")


def notify(alert: Alert, settings: Settings | None = None) -> list[str]:
    """Send ``alert`` on every configured channel; returns the channels that delivered it. Every channel
    is tried; if any failed, :class:`AlertDeliveryError` lists them after the others were tried."""
    settings = settings or get_settings()
    channels = configured_channels(settings)
    log.warning("alert %s", alert.subject)
    if not channels:
        log.warning("no alert channel configured (COALCHAIN_ALERT_SMTP_HOST/_TO or COALCHAIN_ALERT_WEBHOOK_URL)")
        return []
    delivered, failures = [], []
    for channel, send in (("email", send_email), ("webhook", post_webhook)):
        if channel not in channels:
            continue
        try:
            send(alert, settings)
            delivered.append(channel)
        except AlertDeliveryError as exc:
            failures.append(str(exc))
    if failures:
        raise AlertDeliveryError("; ".join(failures))
    return delivered


# --- from an Airflow failure -----------------------------------------------------------------------------
def gate_details(exc: BaseException | None) -> tuple[list[str], list[str]] | None:
    """(failing expectations, blocked days) when ``exc`` (or its cause) is the data-quality gate's
    failure, else None. The gate's error is recognised by its type (``QualityGateError``, not imported:
    it lives beside Great Expectations) or, when a task re-raised it as another exception, by its text."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        result = getattr(exc, "result", None)
        if type(exc).__name__ == "QualityGateError" and result is not None:
            expectations = [f"{result.table}.{o.describe()}" for o in result.critical_failures]
            summary = getattr(exc, "summary", None) or {}
            days = list(summary.get("blocked_days") or [d.isoformat() for d in result.event_dates])
            if summary:   # the whole gate's error: its text lists every failed table, not only the first
                expectations = _expectations_in(str(exc)) or expectations
            return expectations, days
        if "data-quality gate failed for" in str(exc):
            text = str(exc)
            days = sorted({d.strip() for m in _GATE_HEAD.finditer(text) for d in m.group(2).split(",")
                           if d.strip() and d.strip() != "whole table"})
            return _expectations_in(text), days
        exc = exc.__cause__ or exc.__context__
    return None


def _expectations_in(text: str) -> list[str]:
    return [line.strip()[2:] for line in text.splitlines() if line.startswith("  - ")]


def alert_from_context(context) -> Alert:
    """The alert for a failed task, from the context Airflow passes to ``on_failure_callback``."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    logical = context.get("logical_date") or getattr(dag_run, "logical_date", None) \
        or getattr(dag_run, "run_after", None)
    day = context.get("ds") or (logical.date().isoformat() if logical is not None else None)
    exc = context.get("exception")
    error = None if exc is None else f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    alert = Alert(kind=TASK_FAILED, dag_id=getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None),
                  task_id=getattr(ti, "task_id", None), day=day,
                  run_id=context.get("run_id") or getattr(dag_run, "run_id", None),
                  logical_date=logical.isoformat() if logical is not None else None,
                  try_number=getattr(ti, "try_number", None), error=error)
    gate = gate_details(exc) if isinstance(exc, BaseException) else None
    if gate is not None:
        alert.kind = QUALITY_GATE_BLOCKED
        alert.failing_expectations, alert.blocked_days = gate
    return alert


def on_task_failure(context) -> None:
    """Airflow ``on_failure_callback``: alert on every configured channel. A delivery failure is logged,
    not raised: the task has failed already and its own error is what the log must show."""
    try:
        alert = alert_from_context(context)
        delivered = notify(alert)
        if delivered:
            log.info("alert sent by %s", ", ".join(delivered))
    except AlertDeliveryError as exc:
        log.error("alert not delivered: %s", exc)

"""Self-contained monthly HTML reports: one per company (tenant-isolated) and one for planners.

    python -m jobs.delivery.report --month 2026-11     # or --latest: the newest month with gold data

Output: ``<reports_root>/<yyyy-mm>/c_<16 hex>.html`` per company (hashed key, jobs/delivery/company_keys.py) and
``planners.html``. Each file opens offline: CSS inline, charts as embedded PNGs, no external URL.

Modules: ``data`` (extract: Spark aggregation → small pandas frames; tenant scoping), ``charts``
(matplotlib figures), ``render`` (HTML from the Jinja templates in ``templates/``), ``job`` (orchestration
and the command line). See docs/reports.md.
"""

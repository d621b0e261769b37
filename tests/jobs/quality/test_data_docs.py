"""Great Expectations Data Docs that open offline (jobs.quality.data_docs, jobs.quality.validation.build_data_docs), on a tiny
lake validated by the real suites, opened in headless Chromium inside a network namespace with no network.

The lake (rows built by hand, as in tests/jobs/quality/test_validation.py):

* silver_companies C01, silver_trucks BEV (rated 34.5 t) and FCEV, silver_mines M1 (not validated here);
* silver_telematics 2026-11-05: 3 frames, one with coordinate system 'BD09' -> one **warning** failure;
* silver_weighbridge 2026-11-03: tickets W1 net 34.5 t (ratio 34.5 / 34.5 = 1.0) and W2 net 46.0 t
  (ratio 46.0 / 34.5 = 1.333 > 1.3) -> one **critical** failure, 1 unexpected of 2 tickets = 50 %.

One gate run (run id ``gate_docs``) validates companies, trucks, telematics and weighbridge; a later
day-by-day re-validation of the weighbridge (``gate_docs_by_day``) must not count as the gate's page.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from jobs.quality import data_docs
from jobs.quality import validation as q
from jobs.platform.settings import Settings
from tests.jobs.quality.test_validation import BEV, FCEV, _write, frame, write_dimensions
from tests.pages import chromium, offline_problems, requested_urls

WARNING_DAY, CRITICAL_DAY = dt.date(2026, 11, 5), dt.date(2026, 11, 3)
GATE_RUN = "gate_docs"
# table -> the status the index shows (the gate's verdict: a warning-only run passes)
EXPECTED_STATUS = {"silver_companies": "Succeeded", "silver_trucks": "Succeeded",
                   "silver_telematics": "Succeeded", "silver_weighbridge": "Failed"}


def _ticket(ticket_id: str, net_t: float, hour: int) -> dict:
    return {"ticket_id": ticket_id, "vin": BEV, "mine_id": "M1", "load_ts_utc": dt.datetime(2026, 11, 3, hour),
            "gross_t": net_t + 15.5, "tare_t": 15.5, "net_t": net_t, "destination_id": "RS1",
            "event_date_local": CRITICAL_DAY, "source_file": "weighbridge/2026-11-03/tickets.csv"}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("data_docs")
    s = Settings(lake_root=root / "lake", landing_root=root / "landing")
    write_dimensions(spark, s)
    _write(spark, "telematics", [frame(BEV, "2026-11-05 08:00", 1030.0, coord="BD09"),
                                 frame(BEV, "2026-11-05 08:01", 1031.0), frame(FCEV, "2026-11-05 08:00", 5000.0)], s)
    _write(spark, "weighbridge", [_ticket("W1", 34.5, 1), _ticket("W2", 46.0, 2)], s)
    return s


@pytest.fixture(scope="module")
def site(spark, lake) -> dict[str, q.QualityResult]:
    """The gate run written and its Data Docs built (what gate_silver does for its tables)."""
    results = {}
    for table, days in (("silver_companies", []), ("silver_trucks", []), ("silver_telematics", [WARNING_DAY]),
                        ("silver_weighbridge", [CRITICAL_DAY])):
        result = q.validate_day(spark, table, days, settings=lake, run_id=GATE_RUN)
        q.write_results(spark, result, lake)
        results[table] = result
    q.build_data_docs(settings=lake, results=list(results.values()))
    return results


def test_the_lake_has_one_warning_and_one_critical_failure(site):
    assert {t: (len(r.critical_failures), len(r.warning_failures)) for t, r in site.items()} == {
        "silver_companies": (0, 0), "silver_trucks": (0, 0), "silver_telematics": (0, 1), "silver_weighbridge": (1, 0)}
    (ratio,) = site["silver_weighbridge"].critical_failures
    assert (ratio.column, ratio.unexpected_count, ratio.element_count) == ("payload_ratio", 1, 2)


# --- what the site is made of ---------------------------------------------------------------------------
def test_vendored_files_are_the_pinned_packages_files_unchanged():
    listed = dict(reversed(line.split("  ", 1)) for line in
                  (data_docs.VENDOR_DIR / data_docs.CHECKSUMS).read_text(encoding="utf-8").splitlines())
    expected = {f"{p.folder}/{f}" for p in data_docs.PACKAGES for f in (*p.files, *p.licence_files)} | {"README.md"}
    assert set(listed) == expected
    assert data_docs.checksums(data_docs.VENDOR_DIR) == listed       # nothing edited, nothing added
    # every licence the README names is one of the packages' (10 packages, one row each)
    readme = (data_docs.VENDOR_DIR / "README.md").read_text(encoding="utf-8")
    assert len(re.findall(r"^\| `[^`]+@\d", readme, re.M)) == len(data_docs.PACKAGES) == 10


def test_every_remote_asset_of_gx_templates_has_a_local_copy():
    """GX's own templates and style sheet, read as installed: a GX upgrade that names another CDN file fails here."""
    import great_expectations

    view = Path(great_expectations.__file__).parent / "render" / "view"
    texts = [f.read_text(encoding="utf-8") for f in (view / "templates").glob("*.j2")]
    texts.append((view / "static" / "styles" / "data_docs_default_styles.css").read_text(encoding="utf-8"))
    found = set()
    for text in texts:
        found |= set(re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="(https?://[^"]+)"', text))
        found |= set(re.findall(r"url\('?(https?://[^')]+)", text))
    assert len(found) >= 15                                   # the CDN files of GX 1.24 (and its dark logo)
    missing = {u for u in found if u not in data_docs.CDN_FILES and not data_docs.GX_ASSETS.fullmatch(u)}
    assert not missing, missing
    for url in found:
        if data_docs.GX_ASSETS.fullmatch(url):
            assert data_docs.GX_ASSETS.fullmatch(url).group(1) in data_docs.GX_IMAGE_FILES, url


def test_gx_pages_as_rendered_by_gx_load_remote_assets_and_the_check_finds_them(lake, site, tmp_path):
    """The check below can fail: GX's own build (no localisation) of the same results breaks it."""
    raw = tmp_path / "raw_site"
    q._gx_context(results_dir=q.results_dir_of(lake), docs_dir=raw).build_data_docs()
    problems = offline_problems(raw / "index.html")
    assert any("https://code.jquery.com/jquery-3.7.1.min.js is remote" in p for p in problems), problems
    assert any("bootstrap.min.css is remote" in p for p in problems), problems


def test_every_page_of_the_site_loads_only_files_of_the_site(lake, site):
    pages = sorted(q.docs_dir_of(lake).rglob("*.html"))
    assert len(pages) == 5                                    # the index and 4 validation pages
    for page in pages:
        assert offline_problems(page) == [], page
    q.build_data_docs(settings=lake)                           # the whole site rebuilt: the same
    for page in sorted(q.docs_dir_of(lake).rglob("*.html")):
        assert offline_problems(page) == [], page


# --- opened in Chromium with no network ------------------------------------------------------------------
# Chromium's own background services (time, component updates) ask Google's hosts whatever the page is;
# every other remote request would come from the page.
_BROWSER_HOSTS = re.compile(r"^https?://[^/]*\b(?:google\.com|googleapis\.com|gvt1\.com)(?:/|$)")
# Added to a copy of a page: after load, write into the DOM what the style sheets and fonts made of it.
_STYLE_PROBE = """<script>window.addEventListener('load', function () {
  var nav = document.querySelector('nav.navbar'), icon = document.querySelector('i.fas');
  document.fonts.ready.then(function () {
    document.body.setAttribute('data-probe', JSON.stringify({
      navbar_position: getComputedStyle(nav).position,
      icon_font: icon ? getComputedStyle(icon).fontFamily : null,
      icon_font_loaded: document.fonts.check('900 16px "Font Awesome 6 Free"')}));
  });
});</script></body>"""


def open_offline(page: Path, tmp_path: Path, name: str) -> tuple[str, list[str], dict]:
    """(DOM after scripts ran, remote URLs the page requested, the style probe) of ``page`` opened offline."""
    import json

    probe = page.with_name(f"probe_{page.name}")          # beside the page: the same relative paths
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _STYLE_PROBE, 1), encoding="utf-8")
    try:
        net_log = tmp_path / f"{name}.netlog.json"
        dom = chromium(["--virtual-time-budget=8000", f"--log-net-log={net_log}", "--dump-dom", probe.as_uri()],
                       tmp_path / f"profile_{name}", offline=True).stdout
    finally:
        probe.unlink()
    remote = [u for u in requested_urls(net_log) if not u.startswith("file:") and not _BROWSER_HOSTS.match(u)]
    m = re.search(r"data-probe=\"([^\"]*)\"", dom)
    assert m, "the style probe did not run"
    return dom, remote, json.loads(m.group(1).replace("&quot;", '"'))


def test_the_net_log_records_what_a_page_asks_of_the_network(lake, site, tmp_path):
    """Control for the offline checks: GX's unlocalised index asks the CDNs, and the log shows it."""
    raw = tmp_path / "raw_site"
    q._gx_context(results_dir=q.results_dir_of(lake), docs_dir=raw).build_data_docs()
    dom, remote, probe = open_offline(raw / "index.html", tmp_path, "raw")
    assert "https://code.jquery.com/jquery-3.7.1.min.js" in remote, remote
    assert probe["navbar_position"] != "sticky"               # no Bootstrap: the page is unstyled
    assert 'class="clickable-row"' not in dom                  # and the results table is empty


def test_index_offline_lists_every_validated_table_with_its_status(lake, site, tmp_path):
    dom, remote, probe = open_offline(q.docs_dir_of(lake) / "index.html", tmp_path, "index")
    assert remote == []
    # Bootstrap's CSS applied (its sticky navbar) and Font Awesome's icon font loaded from the site
    assert probe == {"navbar_position": "sticky", "icon_font": '"Font Awesome 6 Free"', "icon_font_loaded": True}
    rows = re.findall(r'<tr class="clickable-row" data-href="validations/(\w+)/([\w-]+)/[^"]+" data-index="\d+">(.*?)</tr>',
                      dom, re.S)
    status = {}
    for table, run_id, cells in rows:
        assert run_id == GATE_RUN
        icon = re.search(r'<i class="fas (fa-[\w-]+) (text-\w+)', cells).groups()
        status[table] = {("fa-check-circle", "text-success"): "Succeeded", ("fa-times", "text-danger"): "Failed"}[icon]
        assert re.search(rf">\s*{table}\s*<", cells)          # the asset name column
    assert status == EXPECTED_STATUS


def test_validation_page_offline_shows_the_failed_expectation_with_its_observed_value(lake, site, tmp_path):
    (page,) = q.docs_dir_of(lake).glob("validations/silver_weighbridge/gate_docs/*/2026-11-03.html")
    dom, remote, probe = open_offline(page, tmp_path, "weighbridge")
    assert remote == [] and probe["navbar_position"] == "sticky" and probe["icon_font_loaded"]
    start = dom.index('<h5 class="m-0">\n                    payload_ratio')
    section = dom[start:dom.index('class="alert alert-secondary"', start)]      # up to the next column's header
    text = " ".join(re.sub(r"<[^>]+>", " ", section).split())
    assert section.count('class="fas fa-times text-danger"') == 1              # its one expectation failed
    # W2: 46.0 / 34.5 = 1.3333333333333333, one of the 2 tickets: 50 %; then the Observed Value column
    assert ("values must be less than or equal to 1.3 . 1 unexpected values found. 50% of 2 total rows. "
            "Unexpected Value Count 1.3333333333333333 1 50% unexpected") in text, text


# --- the latest gate run's page per table ----------------------------------------------------------------
def test_latest_gate_pages_name_each_tables_page_and_the_gates_verdict(spark, lake, site):
    pages = q.latest_gate_pages(lake)
    assert {t: (p.run_id, p.status, p.critical_failed, p.warning_failed) for t, p in pages.items()} == {
        "silver_companies": (GATE_RUN, "passed", 0, 0), "silver_trucks": (GATE_RUN, "passed", 0, 0),
        "silver_telematics": (GATE_RUN, "passed with warnings", 0, 1),
        "silver_weighbridge": (GATE_RUN, "failed", 1, 0)}
    for table, p in pages.items():
        assert p.page.is_file() and p.page.parent.parent.name == GATE_RUN and table in p.page.parts
        assert p.validated_at == site[table].validated_at
    # a later day-by-day re-validation is not the gate's page
    by_day = q.validate_day(spark, "silver_weighbridge", [CRITICAL_DAY], settings=lake, run_id=f"{GATE_RUN}_by_day")
    q.write_results(spark, by_day, lake)
    q.build_data_docs(settings=lake, results=[by_day])
    assert q.latest_gate_pages(lake)["silver_weighbridge"].page == pages["silver_weighbridge"].page


def test_run_summary_names_each_tables_verdict_and_page(lake, site):
    from jobs.tools.demo import quality_lines

    lines = quality_lines(lake)
    assert str(q.docs_dir_of(lake) / "index.html") in lines[0]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == ["silver_companies", "silver_telematics", "silver_trucks", "silver_weighbridge"]
    assert " failed " in rows["silver_weighbridge"] and " passed with warnings " in rows["silver_telematics"]
    for table, line in rows.items():
        page = Path(line.split()[-1])
        assert page.is_file() and page.parts[-4:-2] == (table, GATE_RUN), line


def test_localise_html_points_cdn_files_and_gx_images_at_the_site():
    page = ('<link href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>'
            '<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" integrity="sha384-x" '
            'crossorigin="anonymous"></script><link rel="shortcut icon" href="../../../static/images/favicon.ico"/>'
            '<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1">'
            '<a href="https://greatexpectations.io">GX</a>')
    # a validation page 4 folders deep: ../../../../static/ (GX's favicon climbs only 3)
    assert data_docs.localise_html(page, "../../../../static/") == (
        '<link href="../../../../static/vendor/bootstrap-4.3.1/dist/css/bootstrap.min.css"/>'
        '<script src="../../../../static/vendor/bootstrap-4.3.1/dist/js/bootstrap.min.js"></script>'
        '<link rel="shortcut icon" href="../../../../static/images/favicon.ico"/>'
        '<img src="../../../../static/images/logo-long.png"><a href="https://greatexpectations.io">GX</a>')

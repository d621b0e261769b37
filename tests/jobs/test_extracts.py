"""Per-company KPI extract packs on the committed sample world (gold built for 2026-11 by the shared
``sample_gold_lake`` fixture): a pack for every company, strict tenant isolation (no id of another
company anywhere in any file), hashed paths, verifiable checksums, a value recomputed by hand from
silver, atomic re-runs, deterministic contents and the CLI's errors."""
from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from jobs.delivery import extracts
from jobs.platform import delta_tables
from jobs.delivery.company_keys import company_key
from jobs.delivery.extracts import (CHECKSUMS, MANIFEST, TABLES, ExtractTable, IsolationError, Owners, check_isolation,
                           write_pack)
from jobs.platform.settings import Settings
from schemas.tables import SILVER

MONTH = dt.date(2026, 11, 1)
PERIOD = "2026-11"
TABLE_NAMES = {t.name for t in TABLES}


@pytest.fixture(scope="module")
def lake(sample_gold_lake, tmp_path_factory):
    """The shared sample lake (read only) with delivery into a private folder."""
    gold_settings, _ = sample_gold_lake
    return Settings(lake_root=gold_settings.lake_root, landing_root=gold_settings.landing_root,
                    delivery_root=tmp_path_factory.mktemp("delivery"))


@pytest.fixture(scope="module")
def silver(spark, lake) -> dict:
    """Silver tables of the sample as pandas frames (tiny)."""
    names = ("companies", "mines", "washing_plants", "trucks", "charging_stations", "charging_connectors",
             "h2_stations", "shipments", "mine_production", "weighbridge")
    return {n: delta_tables.read_existing(spark, SILVER[n], lake).toPandas() for n in names}


@pytest.fixture(scope="module")
def packs(spark, lake, silver):
    """Packs of every company, built through the CLI entry point. Returns {company_id: pack folder}."""
    assert extracts.main(["--month", PERIOD], settings=lake) == 0
    return {cid: lake.extracts_root / PERIOD / company_key(cid, lake)
            for cid in silver["companies"].company_id}


def ids_of(silver: dict, company_id: str) -> set[str]:
    """Every identifier and name of one company's entities in silver (connector ids are per station,
    '1', '2'…, so they are checked as (station, connector) pairs instead; see the isolation test)."""
    s, own = silver, lambda df: df[df.company_id == company_id]
    mines = own(s["mines"])
    ids = {company_id, *own(s["companies"]).company_name.dropna()}
    ids |= set(mines.mine_id) | set(mines.mine_name.dropna())
    ids |= set(own(s["washing_plants"]).plant_id) | set(own(s["washing_plants"]).plant_name.dropna())
    ids |= set(own(s["trucks"]).vin)
    for stations in ("charging_stations", "h2_stations"):
        ids |= set(own(s[stations]).station_id) | set(own(s[stations]).station_name.dropna())
    ids |= set(s["shipments"][s["shipments"].mine_id.isin(mines.mine_id)].shipment_id)
    tickets = s["weighbridge"]
    ids |= set(tickets[tickets.mine_id.isin(mines.mine_id) | tickets.vin.isin(own(s["trucks"]).vin)].ticket_id)
    return ids


def pack_texts(pack: Path) -> dict[str, str]:
    """Everything a reader of the pack can see, as text per file: CSV text, every Parquet value and
    its schema metadata, every Excel cell and sheet name, the manifest and the checksum list."""
    texts = {}
    for path in sorted(p for p in pack.rglob("*") if p.is_file()):
        rel = str(path.relative_to(pack))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            values = [str(v) for col in table.columns for v in col.to_pylist()]
            meta = [f"{k!r}{v!r}" for k, v in (table.schema.metadata or {}).items()]
            texts[rel] = "\n".join(values + meta + table.column_names)
        elif path.suffix == ".xlsx":
            wb = load_workbook(path, read_only=True)
            cells = [str(v) for ws in wb for row in ws.iter_rows(values_only=True) for v in row if v is not None]
            texts[rel] = "\n".join(wb.sheetnames + cells)
            wb.close()
        else:
            texts[rel] = path.read_text(encoding="utf-8")
    return texts


def sheet_blocks(ws) -> dict[str, tuple[list, list]]:
    """{table: (header, data rows)} of a family sheet: a title row (table name, content, "n rows"), the
    header row, the data rows, a blank row."""
    rows, blocks, i = list(ws.iter_rows(values_only=True)), {}, 0
    while i < len(rows):
        if rows[i] and rows[i][0] in TABLE_NAMES:
            header, data, j = list(rows[i + 1]), [], i + 2
            while j < len(rows) and any(v is not None for v in rows[j]):
                data.append(rows[j])
                j += 1
            blocks[rows[i][0]] = ([h for h in header if h is not None], data)
            i = j
        i += 1
    return blocks


# --- packs, paths, isolation --------------------------------------------------------------------------------

def test_a_pack_for_every_company_and_no_raw_id_or_name_in_any_path(packs, lake, silver):
    month_dir = lake.extracts_root / PERIOD
    assert len(packs) == 3                                          # C01, C02, C03 in the sample
    assert sorted(p.name for p in month_dir.iterdir()) == sorted(p.name for p in packs.values())
    every_id = set().union(*(ids_of(silver, c) for c in packs))
    for pack in packs.values():
        assert (pack / MANIFEST).is_file() and (pack / CHECKSUMS).is_file()
        for path in [pack, *pack.rglob("*")]:
            rel = str(path.relative_to(lake.delivery_dir))
            leaked = {i for i in every_id if i in rel}
            assert not leaked, f"{rel} contains {leaked}"


def test_no_id_of_another_company_anywhere_in_a_pack_and_its_own_ids_are_there(packs, silver):
    connectors = silver["charging_connectors"].merge(silver["charging_stations"][["station_id", "company_id"]],
                                                     on="station_id", how="inner")
    for cid, pack in packs.items():
        own = ids_of(silver, cid)
        foreign = set().union(*(ids_of(silver, c) for c in packs if c != cid)) - own
        assert foreign and not (foreign & own)
        texts = pack_texts(pack)
        assert len(texts) == 2 * len(TABLES) + 3                    # csv + parquet per table, xlsx, manifest, sums
        for rel, text in texts.items():
            leaked = sorted(i for i in foreign if i in text)
            assert not leaked, f"{pack.name}/{rel} contains ids of another company: {leaked[:10]}"
        # the company's own entities are there (a pack cannot pass by being empty)
        everything = "\n".join(texts.values())
        mines = silver["mines"][silver["mines"].company_id == cid]
        expected = {cid, *mines.mine_id, *silver["charging_stations"].query("company_id == @cid").station_id,
                    *silver["h2_stations"].query("company_id == @cid").station_id,
                    *silver["shipments"][silver["shipments"].mine_id.isin(mines.mine_id)].shipment_id,
                    *silver["weighbridge"][silver["weighbridge"].mine_id.isin(mines.mine_id)].ticket_id}
        assert not expected - set(i for i in expected if i in everything)
        trucks = pq.read_table(pack / "parquet" / "gold_truck_energy_daily.parquet").to_pandas()
        assert set(trucks.vin) == set(silver["trucks"].query("company_id == @cid").vin)
        # connector ids repeat across stations: every (station, connector) pair must be the company's own
        own_pairs = set(connectors[connectors.company_id == cid][["station_id", "connector_id"]].itertuples(
            index=False, name=None))
        for name in ("gold_charging_connector_hourly", "gold_charging_connector_daily"):
            rows = pq.read_table(pack / "parquet" / f"{name}.parquet").to_pandas()
            assert set(rows[["station_id", "connector_id"]].itertuples(index=False, name=None)) == own_pairs


def test_rollups_keep_company_and_mine_rows_only(packs, silver):
    for cid, pack in packs.items():
        own_mines = set(silver["mines"].query("company_id == @cid").mine_id)
        for t in (t for t in TABLES if t.owner_kind == "scope"):
            rows = pq.read_table(pack / "parquet" / f"{t.name}.parquet").to_pandas()
            assert set(rows.scope_level) <= {"company", "mine"}, t.name
            assert set(rows[rows.scope_level == "company"].scope_id) <= {cid}
            assert set(rows[rows.scope_level == "mine"].scope_id) <= own_mines
        rail = pq.read_table(pack / "parquet" / "gold_rail_share_monthly.parquet").to_pandas()
        assert (rail.scope_level == "company").sum() == 1            # every sample company ships coal


def test_with_owner_maps_scopes_and_drops_banner_and_city_rows(spark):
    owners = Owners({"C01": "A", "C02": "B"}, {"company": {"C01": "C01", "C02": "C02"}, "mine": {"M002": "C02"}})
    rollup = spark.createDataFrame(
        [("company", "C01", 1.0), ("mine", "M002", 2.0), ("mine", "M999", 3.0), ("banner", "Zhungeer", 4.0),
         ("city", "ordos", 5.0)], "scope_level string, scope_id string, rail_t double")
    table = next(t for t in TABLES if t.name == "gold_rail_share_monthly")
    got = sorted(tuple(r) for r in extracts.with_owner(rollup, table, owners=owners).collect())
    # company C01 -> C01; mine M002 -> its company C02; unknown mine -> no owner (left out, with a
    # warning); banner and city rows sum over companies -> dropped
    assert got == [("company", "C01", 1.0, "C01"), ("mine", "M002", 2.0, "C02"), ("mine", "M999", 3.0, None)]


def test_a_row_naming_another_companys_entity_stops_the_pack():
    owners = Owners({"C01": "A", "C02": "B"}, {"company": {"C01": "C01", "C02": "C02"},
                                                "mine": {"M001": "C01", "M002": "C02"}, "plant": {"WP01": "C01"}})
    table = next(t for t in TABLES if t.name == "gold_washing_monthly")
    ok = pa.table({"plant_id": ["WP01"], "company_id": ["C01"], "mine_id": ["M001"]})
    check_isolation(ok, table, "C01", owners)
    # C01's plant attached to C02's mine: M002 would leak into C01's pack
    with pytest.raises(IsolationError, match="mine_id"):
        check_isolation(pa.table({"plant_id": ["WP01"], "company_id": ["C01"], "mine_id": ["M002"]}), table, "C01",
                        owners)


# --- checksums, manifest, workbook ---------------------------------------------------------------------------

def test_checksums_verify_with_sha256sum_and_the_manifest_matches_the_files(packs, silver):
    for cid, pack in packs.items():
        out = subprocess.run(["sha256sum", "--strict", "-c", CHECKSUMS], cwd=pack, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        listed = {line.split("  ", 1)[1] for line in (pack / CHECKSUMS).read_text().splitlines()}
        on_disk = {str(p.relative_to(pack)) for p in pack.rglob("*") if p.is_file()} - {CHECKSUMS}
        assert listed == on_disk
        manifest = json.loads((pack / MANIFEST).read_text())
        name = silver["companies"].set_index("company_id").company_name[cid]
        assert manifest["company"] == {"key": pack.name, "id": cid, "name": name}
        assert manifest["period"] == {"month": PERIOD, "start": "2026-11-01", "end": "2026-11-30"}
        # factors_v2026.2: the rail freight factor of the chain-energy rows with a rail leg
        assert manifest["versions"]["factor_version"] == ["factors_v2026.1", "factors_v2026.2"]
        assert {f["path"] for f in manifest["files"]} | {MANIFEST} == on_disk
        wb = load_workbook(pack / f"kpi_extract_{PERIOD}.xlsx", read_only=True)
        for f in manifest["files"]:
            path = pack / f["path"]
            assert f["bytes"] == path.stat().st_size
            if f["format"] == "csv":
                with path.open(encoding="utf-8", newline="") as fh:
                    assert f["rows"] == sum(1 for _ in csv.reader(fh)) - 1
            elif f["format"] == "parquet":
                assert f["rows"] == pq.read_metadata(path).num_rows
                csv_rows = next(g["rows"] for g in manifest["files"] if g["path"] == f"csv/{f['table']}.csv")
                assert f["rows"] == csv_rows
            else:
                for sheet, tables in f["sheets"].items():
                    blocks = sheet_blocks(wb[sheet])
                    assert {t: len(rows) for t, (_, rows) in blocks.items()} == tables
        wb.close()
        assert sum(t["rows"] for t in manifest["tables"]) > 0


def test_csv_and_parquet_hold_the_same_rows(packs):
    pack = packs["C01"]
    for t in TABLES:
        table = pq.read_table(pack / "parquet" / f"{t.name}.parquet")
        with (pack / "csv" / f"{t.name}.csv").open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == table.column_names
        types = [f.type for f in table.schema]
        parsed = [[parse_cell(cell, typ) for cell, typ in zip(row, types)] for row in rows[1:]]
        # a NaN double and an empty text are written empty, as a null is
        expected = [[None if (isinstance(v, float) and v != v) or v == "" else v for v in r.values()]
                    for r in table.to_pylist()]
        assert parsed == expected, t.name


def parse_cell(text: str, typ: pa.DataType):
    """A CSV cell read back by the rules docs/extracts.md states (empty = null, true/false, ISO dates and
    times, floats in Python's shortest round-trip form), independently of the writer."""
    if text == "":
        return None
    if pa.types.is_boolean(typ):
        return {"true": True, "false": False}[text]
    if pa.types.is_string(typ) and text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        return text[1:]
    if pa.types.is_floating(typ):
        return float(text)
    if pa.types.is_decimal(typ):
        return decimal.Decimal(text)
    if pa.types.is_integer(typ):
        return int(text)
    if pa.types.is_timestamp(typ):
        return dt.datetime.fromisoformat(text)
    if pa.types.is_date(typ):
        return dt.date.fromisoformat(text)
    return text


def test_csv_text_of_each_type_is_the_one_written_by_hand(tmp_path):
    rows = pa.table({
        "scope_id": ["M001", None], "energy_kgce_per_t": [2.5, float("nan")], "delta_t": [-0.1, 1e-07],
        "meets_target": [True, False], "month_start": [dt.date(2026, 11, 1), dt.date(2026, 11, 1)],
        "issued_at": [dt.datetime(2026, 11, 3, 16, 5), None], "sessions": [3, None]})
    extracts.write_csv(rows, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text(encoding="utf-8") == (
        "scope_id,energy_kgce_per_t,delta_t,meets_target,month_start,issued_at,sessions\n"
        "M001,2.5,-0.1,true,2026-11-01,2026-11-03T16:05:00,3\n"
        ",,1e-07,false,2026-11-01,,\n")


def test_workbook_has_a_cover_and_one_sheet_per_family_with_units_in_headers(packs, silver):
    wb = load_workbook(packs["C01"] / f"kpi_extract_{PERIOD}.xlsx", read_only=True)
    assert wb.sheetnames == ["Cover", "Mine energy", "Washing", "Truck energy", "Chain energy",
                             "Charging utilisation", "Hydrogen utilisation", "Rail share"]
    cover = {r[0]: r[1:] for r in wb["Cover"].iter_rows(values_only=True) if r and r[0] is not None}
    assert cover["Company"][0] == silver["companies"].set_index("company_id").company_name["C01"]
    assert cover["Period"][0] == PERIOD and dt.datetime.fromisoformat(cover["Generated at (UTC)"][0])
    assert cover["factor_version"][0] == "factors_v2026.1, factors_v2026.2"
    assert cover["rail_share_tonnes_pct"][0] == "%"                   # a definition row: kpi, unit, ...
    mine_header, mine_rows = sheet_blocks(wb["Mine energy"])["gold_mine_energy_monthly"]
    assert "energy_kgce_per_t [kgce/t]" in mine_header and "raw_coal_t [t]" in mine_header
    assert "mine_id" in mine_header and len(mine_rows) == 2         # C01 runs M001 and M004
    h2_header, _ = sheet_blocks(wb["Hydrogen utilisation"])["gold_h2_station_daily"]
    assert "nameplate_utilisation_pct [%]" in h2_header
    wb.close()


# --- a value worked out independently from silver -------------------------------------------------------------

def test_company_raw_coal_and_rail_share_recomputed_from_silver(packs, silver):
    mines = silver["mines"].query("company_id == 'C01'").mine_id
    prod = silver["mine_production"]
    prod = prod[prod.mine_id.isin(mines) & (prod.shift_date >= MONTH) & (prod.shift_date <= dt.date(2026, 11, 30))]
    raw_coal_t = prod.raw_coal_t.sum()
    rollup = pq.read_table(packs["C01"] / "parquet" / "gold_mine_energy_rollup_monthly.parquet").to_pandas()
    assert list(rollup.scope_level) == ["company"]
    assert float(rollup.raw_coal_t.iloc[0]) == pytest.approx(raw_coal_t, abs=1e-6)
    assert raw_coal_t == pytest.approx(165_906.8, abs=0.05)          # M001 88,343.8 t + M004 77,563.0 t

    # rail share > 500 km (docs/kpis.md §7): coal and coke beyond 500 km; rail when rail_km >= 50 % of km
    ship = silver["shipments"]
    ship = ship[ship.mine_id.isin(mines) & (ship.ship_date >= MONTH) & (ship.ship_date <= dt.date(2026, 11, 30))]
    long_haul = ship[ship["product"].isin(["raw_coal", "clean_coal", "coke"]) & (ship.distance_km > 500)]
    rail = long_haul[(long_haul.rail_km > 0) & (long_haul.rail_km >= 0.5 * long_haul.distance_km)]
    share_pct = rail.tonnes.sum() / long_haul.tonnes.sum() * 100
    with (packs["C01"] / "csv" / "gold_rail_share_monthly.csv").open(encoding="utf-8", newline="") as fh:
        company_row = next(r for r in csv.DictReader(fh) if r["scope_level"] == "company")
    assert float(company_row["rail_share_tonnes_pct"]) == pytest.approx(share_pct, rel=1e-12)
    assert float(company_row["long_haul_t"]) == pytest.approx(long_haul.tonnes.sum(), abs=1e-6)


# --- re-runs: replace, never duplicate; deterministic; never half a pack --------------------------------------

def test_rerun_replaces_the_pack_with_the_same_contents(spark, packs, lake, tmp_path):
    month_dir = lake.extracts_root / PERIOD
    pack = packs["C02"]
    before = {str(p.relative_to(pack)): p.read_bytes() for p in pack.rglob("*") if p.is_file()}
    manifest_before = json.loads(before[MANIFEST])
    later = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    extracts.build_extracts(spark, MONTH, companies=["C02"], settings=lake, generated_at=later)

    assert sorted(p.name for p in month_dir.iterdir()) == sorted(p.name for p in packs.values())  # no temp left
    after = {str(p.relative_to(pack)): p.read_bytes() for p in pack.rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    manifest_after = json.loads(after[MANIFEST])
    assert manifest_after["tables"] == manifest_before["tables"]               # same row counts
    assert manifest_after["generated_at"] == later.isoformat()
    workbook = f"kpi_extract_{PERIOD}.xlsx"
    changed = {rel for rel in before if before[rel] != after[rel]}
    assert changed == {workbook, MANIFEST, CHECKSUMS}                  # CSV and Parquet: byte-identical

    def cells(data: bytes) -> list:
        tmp = tmp_path / "cells.xlsx"
        tmp.write_bytes(data)
        wb = load_workbook(tmp, read_only=True)
        out = [(ws.title, r) for ws in wb for r in ws.iter_rows(values_only=True)
               if not (r and r[0] == "Generated at (UTC)")]
        wb.close()
        tmp.unlink()
        return out

    assert cells(before[workbook]) == cells(after[workbook])


def _pack_tables(pack: Path) -> dict[str, pa.Table]:
    return {t.name: pq.read_table(pack / "parquet" / f"{t.name}.parquet") for t in TABLES}


def test_same_data_and_timestamp_give_byte_identical_packs(packs, tmp_path):
    tables = _pack_tables(packs["C03"])
    at = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    digests = []
    for root in (tmp_path / "a", tmp_path / "b"):
        result = write_pack(root, key="c_0123456789abcdef", company_id="C03", company_name="x", month=MONTH,
                            tables=tables, generated_at=at)
        digests.append((result.path / CHECKSUMS).read_text())
    assert digests[0] == digests[1]


def test_a_failed_run_leaves_the_previous_pack_whole(packs, tmp_path, monkeypatch):
    tables = _pack_tables(packs["C01"])
    kwargs = dict(key="c_0123456789abcdef", company_id="C01", company_name="x", month=MONTH, tables=tables,
                  generated_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    first = write_pack(tmp_path, **kwargs)
    sums = (first.path / CHECKSUMS).read_text()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(extracts, "write_workbook", disk_full)     # after every CSV and Parquet file
    with pytest.raises(OSError, match="No space"):
        write_pack(tmp_path, **{**kwargs, "generated_at": dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)})
    assert [p.name for p in (tmp_path / PERIOD).iterdir()] == [first.path.name]   # no temp folder left
    assert (first.path / CHECKSUMS).read_text() == sums
    assert subprocess.run(["sha256sum", "-c", CHECKSUMS], cwd=first.path, capture_output=True).returncode == 0


# --- the CLI's errors ----------------------------------------------------------------------------------------

def test_cli_unknown_month_unknown_company_and_bad_format(lake, capsys):
    assert extracts.main(["--month", "2026-10"], settings=lake) == extracts.EXIT_ERROR
    err = capsys.readouterr().err
    assert "error: no gold data for 2026-10 (months in gold: 2026-11)" in err

    assert extracts.main(["--month", PERIOD, "--company", "C99"], settings=lake) == extracts.EXIT_ERROR
    assert "unknown company id(s) C99" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exc:
        extracts.main(["--month", "2026-13"], settings=lake)
    assert exc.value.code == extracts.EXIT_USAGE
    assert "invalid month '2026-13'" in capsys.readouterr().err
    assert not (lake.extracts_root / "2026-10").exists()


def test_every_table_of_the_packs_is_a_gold_table_with_an_isolation_rule(lake):
    gold = {p.name for p in lake.gold_root.iterdir() if p.name.startswith("gold_")}
    assert TABLE_NAMES <= gold
    # every gold table is in the packs or excluded with a reason (a new gold table must be decided on)
    assert gold - TABLE_NAMES <= set(extracts.EXCLUDED_TABLES)
    for t in TABLES:
        assert isinstance(t, ExtractTable) and t.family in extracts.FAMILIES and t.isolation


# --- spreadsheet formula injection ------------------------------------------------------------------------
HOSTILE = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR", "M-001"]


def test_csv_text_that_a_spreadsheet_would_run_is_written_with_an_apostrophe(tmp_path):
    rows = pa.table({"name": HOSTILE, "delta_t": [-5.0, -0.5, 1.0, -1.0, 2.0, 3.0, 4.0]})
    extracts.write_csv(rows, tmp_path / "t.csv")
    # csv quotes the fields holding a quote or a CR; numbers keep their sign; every row ends in LF
    text = (tmp_path / "t.csv").read_bytes().decode("utf-8")
    assert [r[0] for r in csv.reader(text.splitlines(keepends=True)[1:])] == ["'" + v for v in HOSTILE[:-1]] + ["M-001"]
    assert text == (
        'name,delta_t\n'
        '"\'=HYPERLINK(""http://evil.example"",""click"")",-5.0\n'
        "'+1+1,-0.5\n"
        "'-2+3,1.0\n"
        "'@SUM(A1),-1.0\n"
        "'\tTab,2.0\n"
        '"\'\rCR",3.0\n'
        "M-001,4.0\n")


def test_workbook_stores_every_text_as_text_and_numbers_as_numbers(tmp_path):
    tables = {t.name: pa.table({"scope_id": pa.array([], pa.string())}) for t in TABLES}
    first = TABLES[0].name
    tables[first] = pa.table({"scope_id": HOSTILE, "delta_t": [-5.0, -0.5, 1.0, -1.0, 2.0, 3.0, 4.0]})
    path = tmp_path / "x.xlsx"
    extracts.write_workbook(path, company_id="C09", company_name=HOSTILE[0], key="c_0", month=dt.date(2026, 11, 1),
                            generated_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), tables=tables)
    wb = load_workbook(path)                                      # not read-only: cell types are exposed
    company = next(r for r in wb["Cover"].iter_rows() if r[0].value == "Company")[1]
    assert (company.value, company.data_type) == (HOSTILE[0], "s")  # the name as text, not a formula
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    sheet = wb[extracts.FAMILIES[TABLES[0].family]]
    # XML reads a bare CR back as LF (line-end normalisation): the text is kept, as text
    as_read = [v.replace("\r", "\n") for v in HOSTILE]
    data = [(r[0].value, r[0].data_type, r[1].value, r[1].data_type) for r in sheet.iter_rows()
            if r[0].value in as_read]
    assert [(v, t) for v, t, _, _ in data] == [(v, "s") for v in as_read]
    assert [(n, t) for _, _, n, t in data] == [(-5.0, "n"), (-0.5, "n"), (1.0, "n"), (-1.0, "n"), (2.0, "n"),
                                                (3.0, "n"), (4.0, "n")]

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
    # the landing files' November shifts (one row per mine, shift date and shift): M001 9 shifts 63,669.01 t
    # + M004 10 shifts 83,354.83 t = 147,023.84 t
    assert raw_coal_t == pytest.approx(147_023.84, abs=0.005)

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


# --- a station used by other companies' trucks; contract haulage -------------------------------------------
# A small lake built here: company A owns mine MINE-A1, charging station CS-A1 (one 100 kW connector),
# hydrogen station H2-A1 and the battery-electric truck VIN_A; company B owns mine MINE-B1, station CS-B1 and
# the truck VIN_B. On 2026-11-02 both trucks charge at A's station (A 100 kWh at 10:00, B 200 kWh at 11:00
# local), both refuel at H2-A1, and B's truck loads coal at A's mine (contract haulage). The gold rows are
# written by hand (the columns the packs need; the rest null) in the sample lake's gold schemas.
CO_A, CO_B = "CO-A", "CO-B"
NAME_A, NAME_B = "Alpha Coal Ltd", "Beta Haulage Ltd"
VIN_A, VIN_B = "LALPHA00000000001", "LBETA000000000001"
TICKET_A, TICKET_B = "WB-MINE-A1-20261102-0001", "WB-MINE-A1-20261102-0002"
DAY = dt.date(2026, 11, 2)
IDS_A = {CO_A, NAME_A, VIN_A, "MINE-A1", "CS-A1", "H2-A1", TICKET_A, TICKET_B}
IDS_B = {CO_B, NAME_B, VIN_B, "MINE-B1", "CS-B1"}


def _utc(hour: int, minute: int = 0) -> dt.datetime:
    """2026-11-02 at a local (UTC+8) hour, as a UTC timestamp."""
    return dt.datetime(2026, 11, 2, hour - 8, minute, tzinfo=dt.timezone.utc)


def _silver_rows() -> dict[str, list[dict]]:
    meta = {"source_file": "hand-built", "record_no": 1, "ingested_at": _utc(23)}
    session = {"connector_id": "1", "station_id": "CS-A1", "meter_start_kwh": 0.0, "event_date_local": DAY, **meta}
    return {
        "companies": [{"company_id": CO_A, "company_name": NAME_A, **meta},
                      {"company_id": CO_B, "company_name": NAME_B, **meta}],
        "mines": [{"mine_id": "MINE-A1", "company_id": CO_A, "mine_type": "open_pit", "banner": "Zhungeer", **meta},
                  {"mine_id": "MINE-B1", "company_id": CO_B, "mine_type": "open_pit", "banner": "Zhungeer", **meta}],
        "washing_plants": [],
        "trucks": [{"vin": VIN_A, "company_id": CO_A, "powertrain": "BEV", "battery_kwh": 282.0, **meta},
                   {"vin": VIN_B, "company_id": CO_B, "powertrain": "BEV", "battery_kwh": 282.0, **meta}],
        "charging_stations": [{"station_id": "CS-A1", "company_id": CO_A, "banner": "Zhungeer", **meta},
                              {"station_id": "CS-B1", "company_id": CO_B, "banner": "Zhungeer", **meta}],
        "h2_stations": [{"station_id": "H2-A1", "company_id": CO_A, "nameplate_kg_per_day": 1000.0,
                         "dispensers": 2, **meta}],
        "charging_sessions": [
            {**session, "session_id": "S-A", "vin": VIN_A, "plug_in_ts_utc": _utc(10), "plug_out_ts_utc": _utc(11),
             "meter_stop_kwh": 100.0, "energy_kwh": 100.0},
            {**session, "session_id": "S-B", "vin": VIN_B, "plug_in_ts_utc": _utc(11), "plug_out_ts_utc": _utc(12),
             "meter_stop_kwh": 200.0, "energy_kwh": 200.0}],
    }


def _gold_rows() -> dict[str, list[dict]]:
    ver = {"definition_version": "charging_util_defs_v2026.1"}
    hour = {"date_local": DAY, "connector_id": "1", "rated_kw": 100.0, "calendar_s": 3600.0, **ver}
    day = {"date_local": DAY, "banner": "Zhungeer", "connectors": 1, "calendar_s": 86400.0, **ver}
    return {
        # CS-A1: A's session 100 kWh in hour 10, B's 200 kWh in hour 11; CS-B1: idle
        "gold_charging_connector_hourly": [
            {**hour, "hour_local": 10, "station_id": "CS-A1", "energy_kwh": 100.0, "charging_s": 3600.0},
            {**hour, "hour_local": 11, "station_id": "CS-A1", "energy_kwh": 200.0, "charging_s": 3600.0},
            {**hour, "hour_local": 10, "station_id": "CS-B1", "energy_kwh": 0.0, "charging_s": 0.0}],
        "gold_charging_connector_daily": [
            {**hour, "station_id": "CS-A1", "energy_kwh": 300.0, "sessions_per_connector_day": 2,
             "kwh_per_connector_day": 300.0},
            {**hour, "station_id": "CS-B1", "energy_kwh": 0.0, "sessions_per_connector_day": 0,
             "kwh_per_connector_day": 0.0}],
        "gold_charging_station_hourly": [
            {**day, "hour_local": 10, "station_id": "CS-A1", "company_id": CO_A, "energy_kwh": 100.0},
            {**day, "hour_local": 11, "station_id": "CS-A1", "company_id": CO_A, "energy_kwh": 200.0},
            {**day, "hour_local": 10, "station_id": "CS-B1", "company_id": CO_B, "energy_kwh": 0.0}],
        # gold traces both trucks: 100 + 200 = 300 kWh, 92 + 180 = 272 kWh into batteries, 28 kWh lost
        "gold_charging_station_daily": [
            {**day, "station_id": "CS-A1", "company_id": CO_A, "energy_kwh": 300.0, "sessions": 2,
             "traced_grid_kwh": 300.0, "charge_in_battery_kwh": 272.0, "charging_loss_kwh": 28.0,
             "charging_loss_pct": 28.0 / 300.0 * 100},
            {**day, "station_id": "CS-B1", "company_id": CO_B, "energy_kwh": 0.0, "sessions": 0}],
        "gold_charging_rollup_daily": [
            {"date_local": DAY, "scope_level": "company", "scope_id": CO_A, "stations": 1, "energy_kwh": 300.0},
            {"date_local": DAY, "scope_level": "company", "scope_id": CO_B, "stations": 1, "energy_kwh": 0.0},
            {"date_local": DAY, "scope_level": "city", "scope_id": "ordos", "stations": 2, "energy_kwh": 300.0}],
        # H2-A1: one fill by each company's truck (a hydrogen station row names no truck either)
        "gold_h2_station_daily": [{"date_local": DAY, "station_id": "H2-A1", "company_id": CO_A, "fills": 2,
                                   "h2_kg": 50.0, "definition_version": "h2_util_defs_v2026.1"}],
        # each truck-day: its own sessions' grid kWh and the energy into its battery (telematics)
        "gold_truck_energy_daily": [
            {"date_local": DAY, "vin": VIN_A, "company_id": CO_A, "powertrain": "BEV", "charging_sessions": 1,
             "grid_kwh": 100.0, "charge_in_battery_kwh": 92.0},
            {"date_local": DAY, "vin": VIN_B, "company_id": CO_B, "powertrain": "BEV", "charging_sessions": 1,
             "grid_kwh": 200.0, "charge_in_battery_kwh": 180.0}],
        "gold_truck_energy_monthly": [
            {"month_start": MONTH, "company_id": CO_A, "powertrain": "BEV", "trucks": 1, "grid_kwh": 100.0},
            {"month_start": MONTH, "company_id": CO_B, "powertrain": "BEV", "trucks": 1, "grid_kwh": 200.0}],
        # both trucks load at A's mine: A's own trip, and B's contract haulage
        "gold_truck_trips": [
            {"ticket_id": TICKET_A, "vin": VIN_A, "mine_id": "MINE-A1", "date_local": DAY, "net_t": 40.0,
             "loaded_km": 10.0, "tonne_km": 400.0},
            {"ticket_id": TICKET_B, "vin": VIN_B, "mine_id": "MINE-A1", "date_local": DAY, "net_t": 30.0,
             "loaded_km": 20.0, "tonne_km": 600.0}],
    }


@pytest.fixture(scope="module")
def shared_station_packs(spark, lake, tmp_path_factory):
    """The small lake above (written with delta-rs in the sample's schemas) and the packs of A and B.
    Returns ({company: pack folder}, build results)."""
    from deltalake import DeltaTable, write_deltalake
    from pyspark.sql.pandas.types import to_arrow_schema

    root = tmp_path_factory.mktemp("shared_station")
    settings = Settings(lake_root=root / "lake", landing_root=lake.landing_root, delivery_root=root / "delivery")
    for name, rows in _silver_rows().items():
        table = pa.Table.from_pylist(rows, to_arrow_schema(SILVER[name].schema))
        write_deltalake(str(settings.silver_root / SILVER[name].name), table)
    gold = _gold_rows()
    for t in TABLES:
        # every column nullable: the rows name only the columns the packs are checked on
        schema = pa.schema([f.with_nullable(True) for f in pa.schema(DeltaTable(str(lake.gold_root / t.name))
                                                                        .schema().to_arrow())])
        write_deltalake(str(settings.gold_root / t.name), pa.Table.from_pylist(gold.get(t.name, []), schema))
    results = extracts.build_extracts(spark, MONTH, settings=settings)
    return {r.company_id: r.path for r in results}, results


def _rows(pack: Path, table: str, *columns: str) -> list[tuple]:
    return [tuple(r[c] for c in columns) for r in pq.read_table(pack / "parquet" / f"{table}.parquet").to_pylist()]


def test_a_station_owner_sees_every_session_at_its_station_and_no_id_of_the_other_company(shared_station_packs):
    packs, results = shared_station_packs
    assert sorted(packs) == [CO_A, CO_B]                          # the run did not stop: both packs written
    a = packs[CO_A]
    # both sessions at CS-A1 are in A's station figures, per hour, connector, station and day
    assert _rows(a, "gold_charging_connector_hourly", "station_id", "connector_id", "hour_local", "energy_kwh") == [
        ("CS-A1", "1", 10, 100.0), ("CS-A1", "1", 11, 200.0)]
    assert _rows(a, "gold_charging_connector_daily", "station_id", "sessions_per_connector_day",
                 "kwh_per_connector_day") == [("CS-A1", 2, 300.0)]
    assert _rows(a, "gold_charging_station_hourly", "station_id", "hour_local", "energy_kwh") == [
        ("CS-A1", 10, 100.0), ("CS-A1", 11, 200.0)]
    assert _rows(a, "gold_h2_station_daily", "station_id", "fills", "h2_kg") == [("H2-A1", 2, 50.0)]
    assert _rows(a, "gold_charging_rollup_daily", "scope_level", "scope_id", "energy_kwh") == [
        ("company", CO_A, 300.0)]
    # the charging losses trace A's own truck only: its 100 kWh session, 100 / 100 of its truck-day's
    # 92 kWh into the battery -> 100 - 92 = 8 kWh lost = 8 / 100 = 8 % (gold, over both trucks: 28 kWh, 9.33 %)
    station_day = _rows(a, "gold_charging_station_daily", "station_id", "sessions", "energy_kwh", "traced_grid_kwh",
                        "charge_in_battery_kwh", "charging_loss_kwh", "charging_loss_pct")
    assert station_day == [("CS-A1", 2, 300.0, 100.0, 92.0, 8.0, pytest.approx(8.0))]
    # A's trucks and trips only
    assert _rows(a, "gold_truck_energy_daily", "vin", "grid_kwh") == [(VIN_A, 100.0)]
    assert _rows(a, "gold_truck_trips", "ticket_id", "vin", "mine_id", "net_t") == [
        (TICKET_A, VIN_A, "MINE-A1", 40.0)]
    for rel, text in pack_texts(a).items():
        leaked = sorted(i for i in IDS_B if i in text)
        assert not leaked, f"A's pack {rel} names {leaked}"
    assert all(i in "\n".join(pack_texts(a).values()) for i in (CO_A, "CS-A1", "H2-A1", VIN_A, TICKET_A))


def test_a_truck_owner_sees_its_trucks_energy_but_not_the_other_companys_station(shared_station_packs):
    packs, _ = shared_station_packs
    b = packs[CO_B]
    # B's truck: its session at A's station counts in its truck-day (1 session, 200 kWh), no station named
    assert _rows(b, "gold_truck_energy_daily", "vin", "charging_sessions", "grid_kwh", "charge_in_battery_kwh") == [
        (VIN_B, 1, 200.0, 180.0)]
    assert "station_id" not in pq.read_schema(b / "parquet" / "gold_truck_energy_daily.parquet").names
    # B's own station only (idle); A's station rows are not in B's pack
    assert _rows(b, "gold_charging_connector_hourly", "station_id", "energy_kwh") == [("CS-B1", 0.0)]
    assert _rows(b, "gold_charging_connector_daily", "station_id") == [("CS-B1",)]
    assert _rows(b, "gold_charging_station_hourly", "station_id") == [("CS-B1",)]
    assert _rows(b, "gold_charging_station_daily", "station_id", "sessions", "traced_grid_kwh") == [("CS-B1", 0, None)]
    assert _rows(b, "gold_h2_station_daily", "station_id") == []
    # contract haulage: B's trip is B's, but A's mine and its ticket (whose id names the mine) are withheld
    assert _rows(b, "gold_truck_trips", "ticket_id", "vin", "mine_id", "net_t", "loaded_km", "tonne_km") == [
        (None, VIN_B, None, 30.0, 20.0, 600.0)]
    with (b / "csv" / "gold_truck_trips.csv").open(encoding="utf-8", newline="") as fh:
        trip = next(csv.DictReader(fh))
    assert (trip["ticket_id"], trip["mine_id"], trip["vin"]) == ("", "", VIN_B)
    for rel, text in pack_texts(b).items():
        leaked = sorted(i for i in IDS_A if i in text)
        assert not leaked, f"B's pack {rel} names {leaked}"
    manifest = json.loads((b / MANIFEST).read_text())
    trips = next(t for t in manifest["tables"] if t["table"] == "gold_truck_trips")
    assert "mine_id, ticket_id empty where mine_id is another company's" in trips["isolation"]


def test_an_id_column_without_an_isolation_rule_stops_the_pack():
    owners = Owners({"C01": "A", "C02": "B"}, {"company": {"C01": "C01", "C02": "C02"},
                                                "charging_station": {"CS1": "C01"}, "truck": {"V2": "C02"}})
    table = next(t for t in TABLES if t.name == "gold_charging_station_daily")
    check_isolation(pa.table({"station_id": ["CS1"], "company_id": ["C01"], "energy_kwh": [300.0]}), table, "C01",
                    owners)
    # a gold change that put the charging truck on the station's row would name C02's truck in C01's pack
    with pytest.raises(IsolationError, match=r"id column\(s\) \['vin'\] have no isolation rule"):
        check_isolation(pa.table({"station_id": ["CS1"], "company_id": ["C01"], "vin": ["V2"]}), table, "C01", owners)


def test_the_own_fleet_columns_are_the_charging_loss_columns():
    from jobs.kpi.charging_utilisation import LOSS_COLUMNS

    assert extracts.OWN_FLEET_COLUMNS == {"gold_charging_station_daily": LOSS_COLUMNS}

"""Every Airflow Asset of the project, declared once: one per silver table, and one per gold table that
the gold catalogue (schemas/gold.py) declares as an Asset."""
from __future__ import annotations

from airflow.sdk import Asset

from schemas import gold

SILVER_SOURCES = (
    "companies", "mines", "washing_plants", "trucks", "charging_stations", "charging_connectors", "h2_stations",
    "production_plan", "mine_production", "washing", "telematics", "weighbridge", "charging_sessions", "connector_status",
    "h2_fills", "shipments",
)


def _table_asset(layer: str, name: str) -> Asset:
    return Asset(name=name, uri=f"delta://coalchain/{layer}/{name}", group="coalchain")


SILVER: dict[str, Asset] = {s: _table_asset("silver", f"silver_{s}") for s in SILVER_SOURCES}

# One Asset per gold table the catalogue declares as one (schemas/gold.py).
GOLD: dict[str, Asset] = {t.name: _table_asset("gold", t.name) for t in gold.assets()}
# What the gold build (kpi_daily, kpi_monthly) updates, and what the extract packs are built from.
GOLD_BUILT: tuple[Asset, ...] = tuple(GOLD[t.name] for t in gold.written_by(gold.KPI_BUILD) if t.name in GOLD)
GOLD_EXTRACTED: tuple[Asset, ...] = tuple(GOLD[t.name] for t in gold.extracted() if t.name in GOLD)

"""Every Airflow Asset of the project, declared once. One Asset per silver and gold table."""
from __future__ import annotations

from airflow.sdk import Asset

SILVER_SOURCES = (
    "companies", "mines", "washing_plants", "trucks", "charging_stations", "charging_connectors", "h2_stations",
    "mine_production", "washing", "telematics", "weighbridge", "charging_sessions", "connector_status",
    "h2_fills", "shipments",
)


def _table_asset(layer: str, name: str) -> Asset:
    return Asset(name=name, uri=f"delta://coalchain/{layer}/{name}", group="coalchain")


SILVER: dict[str, Asset] = {s: _table_asset("silver", f"silver_{s}") for s in SILVER_SOURCES}

GOLD_TABLES = (
    "gold_mine_energy_daily", "gold_mine_energy_monthly", "gold_washing_daily", "gold_washing_monthly",
    "gold_truck_energy_daily", "gold_truck_energy_monthly", "gold_truck_trips", "gold_chain_energy_shipment",
    "gold_charging_connector_hourly", "gold_charging_station_daily", "gold_h2_station_daily",
    "gold_rail_share_monthly", "gold_target_tracking", "gold_charging_forecast",
)
GOLD: dict[str, Asset] = {t: _table_asset("gold", t) for t in GOLD_TABLES}

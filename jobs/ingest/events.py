"""Event sources (CSV) → typed silver rows: production, washing, tickets, charging, status, H2, shipments."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest.casting import Field, add_errors, error, local_date_of, type_csv
from schemas.sources import SOURCES
from schemas.tables import CONNECTOR_STATUS_NAMES

FIELDS: dict[str, list[Field]] = {
    "production_plan": [
        Field("mine_id", "mine_id"), Field("shift_date", "shift_date", "date"), Field("shift_no", "shift_no", "int", 1, 4),
        Field("shift_start_ts_utc", "shift_start_local", "local_ts"),
        Field("planned_raw_coal_t", "planned_raw_coal_t", "double", 0, 200_000),
        Field("trucks_dispatched", "trucks_dispatched", "int", 0, 5_000),
        Field("published_ts_utc", "published_local", "local_ts"),
    ],
    "mine_production": [
        Field("mine_id", "mine_id"), Field("shift_date", "shift_date", "date"), Field("shift_no", "shift_no", "int", 1, 4),
        Field("shift_start_ts_utc", "shift_start_local", "local_ts"), Field("shift_end_ts_utc", "shift_end_local", "local_ts"),
        Field("raw_coal_t", "raw_coal_t", "double", 0, 200_000), Field("electricity_kwh", "electricity_kwh", "double", 0, 50_000_000),
        Field("diesel_kg", "diesel_kg", "double", 0, 5_000_000), Field("other_energy_kgce", "other_energy_kgce", "double", 0, 5_000_000),
    ],
    "washing": [
        Field("plant_id", "plant_id"), Field("prod_date", "prod_date", "date"),
        Field("raw_coal_fed_t", "raw_coal_fed_t", "double", 0, 500_000), Field("clean_coal_t", "clean_coal_t", "double", 0, 500_000),
        Field("middlings_t", "middlings_t", "double", 0, 500_000), Field("gangue_t", "gangue_t", "double", 0, 500_000),
        Field("slime_t", "slime_t", "double", 0, 500_000), Field("electricity_kwh", "electricity_kwh", "double", 0, 50_000_000),
        Field("water_m3", "water_m3", "double", 0, 1_000_000), Field("magnetite_kg", "magnetite_kg", "double", 0, 10_000_000),
    ],
    "weighbridge": [
        Field("ticket_id", "ticket_id"), Field("vin", "vin"), Field("mine_id", "mine_id"),
        Field("load_ts_utc", "load_time_local", "local_ts"), Field("gross_t", "gross_t", "double", 0, 200),
        Field("tare_t", "tare_t", "double", 0, 100), Field("net_t", "net_t", "double", 0, 150),
        Field("destination_id", "destination_id"),
    ],
    "charging_sessions": [
        Field("session_id", "session_id"), Field("station_id", "station_id"), Field("connector_id", "connector_id"),
        Field("vin", "vin"), Field("plug_in_ts_utc", "plug_in_local", "local_ts"),
        Field("charge_start_ts_utc", "charge_start_local", "local_ts"), Field("charge_end_ts_utc", "charge_end_local", "local_ts"),
        Field("plug_out_ts_utc", "plug_out_local", "local_ts"),
        Field("meter_start_kwh", "meter_start_kwh", "double", 0), Field("meter_stop_kwh", "meter_stop_kwh", "double", 0),
        Field("max_power_kw", "max_power_kw", "double", 0, 5000), Field("stop_reason", "stop_reason"),
    ],
    "connector_status": [
        Field("station_id", "station_id"), Field("connector_id", "connector_id"),
        Field("status_ts_utc", "status_time_local", "local_ts"), Field("status_code", "status_code", "int"),
    ],
    "h2_fills": [
        Field("fill_id", "fill_id"), Field("station_id", "station_id"), Field("dispenser_id", "dispenser_id"),
        Field("vin", "vin"), Field("start_ts_utc", "start_local", "local_ts"), Field("end_ts_utc", "end_local", "local_ts"),
        Field("h2_kg", "h2_kg", "double", 0, 200), Field("pressure_mpa", "pressure_mpa", "int"),
    ],
    "shipments": [
        Field("shipment_id", "shipment_id"), Field("mine_id", "mine_id"), Field("product", "product"),
        Field("tonnes", "tonnes", "double", 0, 1_000_000), Field("ship_date", "ship_date", "date"),
        Field("destination", "destination"), Field("distance_km", "distance_km", "double", 0, 5000),
        Field("legs", "legs"),
    ],
}
# Local-time field that fixes each source's event day (Asia/Shanghai calendar day).
EVENT_DAY = {
    "production_plan": "published_local",
    "weighbridge": "load_time_local", "charging_sessions": "plug_in_local",
    "connector_status": "status_time_local", "h2_fills": "start_local",
}
PRODUCTS = ("raw_coal", "clean_coal", "coke")
LEG_MODES = ("road", "rail", "belt")


def type_event(bronze: DataFrame, source: str, tz: str) -> DataFrame:
    spec = SOURCES[source]
    df = type_csv(bronze, FIELDS[source], spec.required, tz)
    if source == "mine_production":
        df = df.withColumn("event_date_local", F.col("shift_date"))
    elif source == "washing":
        df = df.withColumn("event_date_local", F.col("prod_date"))
    elif source == "shipments":
        df = _shipment_legs(df.withColumn("event_date_local", F.col("ship_date")))
    else:
        df = df.withColumn("event_date_local", local_date_of(F.col(f"_raw_{EVENT_DAY[source]}")))

    if source == "charging_sessions":
        df = df.withColumn("energy_kwh", F.col("meter_stop_kwh") - F.col("meter_start_kwh"))
        df = add_errors(
            df,
            F.when(F.col("energy_kwh") < 0, error("meter_stop_kwh", "meter_stop_kwh is below meter_start_kwh")),
            F.when(F.col("plug_out_ts_utc") < F.col("plug_in_ts_utc"), error("plug_out_local", "plug-out before plug-in")),
        )
    elif source == "connector_status":
        names = F.create_map(*[x for code, name in CONNECTOR_STATUS_NAMES.items() for x in (F.lit(code), F.lit(name))])
        df = df.withColumn("status", names[F.col("status_code")])
        df = add_errors(df, F.when(F.col("status_code").isNotNull() & F.col("status").isNull(), error(
            "status_code", F.format_string("status code %d is not a T/CEC 102 code (1, 2, 3, 4, 255)", F.col("status_code")))))
    elif source == "h2_fills":
        df = add_errors(df, F.when(F.col("end_ts_utc") < F.col("start_ts_utc"), error("end_local", "fill ends before it starts")))
    elif source == "production_plan":
        # a plan describes a shift that has not started yet; one released after its shift began is a record
        # of what happened, not a plan, and would leak into any forecast that used it
        df = add_errors(df, F.when(F.col("published_ts_utc") >= F.col("shift_start_ts_utc"), error(
            "published_local", "plan published at or after the start of the shift it plans")))
    elif source == "weighbridge":
        df = add_errors(df, F.when(
            F.col("gross_t").isNotNull() & F.col("tare_t").isNotNull()
            & (F.abs(F.col("gross_t") - F.col("tare_t") - F.col("net_t")) > 0.05),
            error("net_t", "net_t differs from gross_t - tare_t by more than 0.05 t")))
    return df


def _shipment_legs(df: DataFrame) -> DataFrame:
    """Parse legs 'mode:km|mode:km' into per-mode km and the ordered mode pattern (e.g. 'road>rail')."""
    # ``get`` (not ``[]``): a leg without ':km' has no second part, which is a null km here (the row is
    # quarantined on ``legs``), not an out-of-bounds error of the whole job under ANSI mode
    legs = F.transform(
        F.split(F.coalesce(F.col("legs"), F.lit("")), r"\|"),
        lambda leg: F.struct(
            F.lower(F.trim(F.get(F.split(leg, ":"), 0))).alias("mode"),
            F.trim(F.get(F.split(leg, ":"), 1)).try_cast("double").alias("km"),
            F.size(F.split(leg, ":")).alias("parts"),
        ),
    )
    df = df.withColumn("_legs", legs)

    def km_of(mode: str):
        return F.aggregate(F.filter(F.col("_legs"), lambda x: x["mode"] == mode), F.lit(0.0),
                           lambda acc, x: acc + F.coalesce(x["km"], F.lit(0.0)))

    df = (df.withColumn("road_km", km_of("road")).withColumn("rail_km", km_of("rail")).withColumn("belt_km", km_of("belt"))
          .withColumn("mode_pattern", F.array_join(F.transform(F.col("_legs"), lambda x: x["mode"]), ">")))
    bad_leg = F.exists(F.col("_legs"), lambda x: ~x["mode"].isin(*LEG_MODES) | x["km"].isNull() | (x["km"] < 0)
                       | (x["parts"] != 2))
    legs_total = F.col("road_km") + F.col("rail_km") + F.col("belt_km")
    return add_errors(
        df,
        F.when(F.col("legs").isNotNull() & bad_leg, error("legs", F.format_string(
            "legs '%s' is not 'mode:km|...' with modes road, rail, belt", F.col("legs")))),
        F.when(F.col("legs").isNotNull() & ~bad_leg & (F.abs(legs_total - F.col("distance_km")) > 1.0), error(
            "distance_km", F.format_string("distance_km %s differs from the sum of leg km %s",
                                           F.col("distance_km").cast("string"), legs_total.cast("string")))),
        F.when(F.col("product").isNotNull() & ~F.col("product").isin(*PRODUCTS), error(
            "product", F.format_string("'%s' is not one of raw_coal, clean_coal, coke", F.col("product")))),
    )

"""The one typed settings object. Every value comes from the environment (prefix ``COALCHAIN_``).

No secrets live in the repo; a deployment sets these variables (or a ``.env`` file that is ignored).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from typing import Annotated

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from jobs.platform.storage import HADOOP_AWS_VERSION, Location, parse_location

REPO_ROOT = Path(__file__).resolve().parents[2]
DELTA_VERSION = "4.0.1"
# a local folder or s3://bucket/prefix (see jobs/platform/storage.py)
LocationSetting = Annotated[Location, BeforeValidator(parse_location)]
# An optional setting given as an empty variable (as compose passes one left empty in .env) is unset.
EmptyIsUnset = BeforeValidator(lambda value: None if value == "" else value)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COALCHAIN_", env_file=".env", extra="ignore",
                                      arbitrary_types_allowed=True, populate_by_name=True)

    lake_root: LocationSetting = Field(
        REPO_ROOT / ".lake", description="Root of every Delta table (bronze/silver/gold): a folder or s3://bucket/prefix.")
    landing_root: LocationSetting = Field(
        REPO_ROOT / "data_samples" / "landing",
        description="Landing zone: <landing_root>/<source>/<yyyy-mm-dd>/<file>; a folder or s3://bucket/prefix.",
    )
    # Object storage (S3 API: AWS S3, MinIO, Alibaba Cloud OSS): the standard AWS variables, unprefixed.
    aws_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("AWS_ENDPOINT_URL"),
        description="S3 endpoint, e.g. http://127.0.0.1:9000 (MinIO) or https://oss-cn-beijing.aliyuncs.com; "
        "unset for AWS S3.")
    aws_access_key_id: SecretStr | None = Field(None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: SecretStr | None = Field(None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY"))
    aws_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    s3_allow_http: bool = Field(False, description="Allow a plain-HTTP S3 endpoint (a local MinIO or test server).")
    s3_path_style: bool = Field(
        False, description="Path-style requests (http://endpoint/bucket/key), as MinIO and most local servers need.")
    s3_jar_dir: Path = Field(
        Path.home() / ".cache" / "coalchain" / "jars" / f"hadoop-aws-{HADOOP_AWS_VERSION}",
        description="Folder holding hadoop-aws and the AWS SDK bundle (scripts/bootstrap.sh cluster).",
    )
    spark_master: str = Field("local[*]", description="Spark master URL; e.g. spark://host:7077 for a cluster.")
    spark_remote: str | None = Field(
        None,
        description="Spark Connect server the jobs use instead of starting Spark in-process, e.g. "
        "sc://host:15002 (`python -m jobs.platform.session connect-server` starts one); then the master, "
        "JARs and driver settings are the server's.",
    )
    spark_python: str | None = Field(
        None,
        description="Python interpreter the executors run (`spark.pyspark.python`); default the driver's own. "
        "Set it when the workers keep the project's dependencies at another path.",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description='Extra Spark properties as JSON, e.g. {"spark.executor.memory": "4g", '
        '"spark.cores.max": "8"}; applied last, so they win over the defaults.',
    )
    code_cache_dir: Path = Field(
        Path.home() / ".cache" / "coalchain" / "code",
        description="Where the project's code archive for cluster executors is built (named by its content hash).",
    )
    spark_driver_memory: str = "4g"
    spark_shuffle_partitions: int = Field(8, ge=1)
    # Gold families are Spark jobs that wait on I/O and shuffles, so a third family in flight keeps 2 cores
    # busier (docs/benchmarks.md shows the figures). A small source's ingestion time is driver CPU, which
    # 2 cores cannot overlap, so ingestion runs one domain at a time unless the driver has more cores.
    gold_build_threads: int = Field(3, ge=1, description="KPI families built side by side by one gold build "
                                    "(1 = one after the other).")
    ingest_threads: int = Field(1, ge=1, description="Domains whose small sources `runner --all` ingests side "
                                "by side (1 = one after the other); a domain's sources always run in order.")
    spark_profile: Literal["default", "small"] = Field(
        "default",
        description="'small' for tiny inputs (the sample, tests): no whole-stage code generation and no "
        "adaptive re-planning, which cost more than the queries themselves on a few thousand rows.",
    )
    jar_dir: Path = Field(
        Path.home() / ".cache" / "coalchain" / "jars" / f"delta-{DELTA_VERSION}",
        description="Folder holding the Delta Lake JARs fetched once by scripts/bootstrap.sh.",
    )
    source_timezone: str = Field("Asia/Shanghai", description="Zone of source timestamps that carry none; the "
                                 "DAGs' delivery days and schedules are in it too.")
    task_retries: int = Field(2, ge=0, description="Retries of every DAG task (transient failures such as a Delta "
                              "write conflict that outlived the job's own retries).")
    forecast_threads: int = Field(1, ge=1, description="OpenMP threads for fitting the forecast models; on a "
                                  "shared 2-core machine one thread is faster and steadier (OpenMP spin-waits "
                                  "under CPU contention).")
    real_data_root: Path = Field(
        REPO_ROOT.parent / "shared" / "data" / "real",
        description="Public charging datasets the forecast benchmark reads (models/datasets.py).")
    lateness_allowance_days: int = Field(7, ge=0, description="How late a record may arrive and still be accepted.")
    max_record_bytes: int = Field(1 << 20, ge=1024, description="Largest landing record (line, or CSV record) "
                                  "that is parsed; a longer one is quarantined with its size and first characters.")
    delivery_root: Path | None = Field(
        None,
        description="Where extract packs and HTML reports are written (default <lake_root>/../delivery, "
        "i.e. beside the lake, never inside a table folder).",
    )
    quality_root: Path | None = Field(
        None,
        description="Where the quality gate keeps GX's validation results and the Data Docs site (default "
        "<lake_root>/quality; with the lake in a bucket, quality/ in the delivery folder).",
    )
    company_key_salt: str = Field(
        "coalchain",
        description="Salt for the hashed company keys used in delivery paths (company ids never appear raw "
        "in a path). Set a private value per deployment so keys cannot be guessed from public ids.",
    )

    query_timeout_s: float = Field(120.0, gt=0, description="Query CLI: Spark jobs of a query are cancelled after "
                                   "this many seconds.")
    query_max_rows: int = Field(1_000_000, ge=1, description="Query CLI: most rows a result may have, on screen or "
                                "in a --csv/--parquet file.")
    query_memory_mb: int = Field(2048, ge=256, description="Query CLI: heap of the Spark JVM it starts; results "
                                 "brought back to the CLI are bounded to a quarter of it.")

    # Lake maintenance (jobs/platform/maintenance.py, the lake_maintenance DAG)
    maintenance_vacuum_retention_hours: int = Field(
        720, ge=1, description="VACUUM keeps files removed less than this many hours ago; refused when shorter "
        "than the time-travel window (30 days = 720 h, docs/queries.md).")
    maintenance_small_file_mb: float = Field(
        32.0, gt=0, description="A data file smaller than this is a small file: counted in ops/table_health, "
        "and a partition with two or more is compacted.")
    maintenance_target_file_mb: int = Field(128, ge=1, description="Size compaction aims for per output file.")

    # Alerts (jobs/platform/alerts.py): e-mail and/or a webhook; none configured = alerts are only logged
    alert_smtp_host: Annotated[str | None, EmptyIsUnset] = Field(None, description="SMTP server for alert e-mails; unset = no e-mail.")
    alert_smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (587 with STARTTLS, 465 for SSL).")
    alert_smtp_security: Literal["none", "starttls", "ssl"] = Field(
        "none", description="SMTP transport security: none, starttls or ssl (implicit TLS).")
    alert_smtp_user: Annotated[str | None, EmptyIsUnset] = Field(None, description="SMTP login; unset = no authentication.")
    alert_smtp_password: Annotated[SecretStr | None, EmptyIsUnset] = Field(None, description="SMTP password (a secret: never logged).")
    alert_smtp_from: str = Field("coalchain-alerts@localhost", description="Sender address of alert e-mails.")
    alert_smtp_to: list[str] = Field(
        default_factory=list, description='Recipients of alert e-mails, JSON list: ["ops@example.com"].')
    alert_webhook_url: Annotated[SecretStr | None, EmptyIsUnset] = Field(
        None, description="URL alerts are POSTed to as JSON (a secret: chat webhooks carry a token in the URL).")
    alert_timeout_s: float = Field(10.0, gt=0, description="Timeout of one alert delivery (SMTP or webhook).")
    stale_source_hours: float = Field(
        36.0, gt=0, description="A source with no new landing file for this many hours is stale (alerted).")
    stale_source_hours_per_source: dict[str, float] = Field(
        default_factory=dict, description='Per-source staleness limits in hours, JSON: {"shipments": 72}; '
        "sources not named use stale_source_hours.")

    @property
    def bronze_root(self) -> Path:
        return self.lake_root / "bronze"

    @property
    def silver_root(self) -> Path:
        return self.lake_root / "silver"

    @property
    def gold_root(self) -> Path:
        return self.lake_root / "gold"

    @property
    def delivery_dir(self) -> Path:
        if self.delivery_root is not None:
            return self.delivery_root
        if not isinstance(self.lake_root, Path):  # a lake in a bucket: packs go to a local folder
            return REPO_ROOT / "delivery"
        return self.lake_root.parent / "delivery"

    @property
    def quality_dir(self) -> Path:
        if self.quality_root is not None:
            return self.quality_root
        if not isinstance(self.lake_root, Path):  # a lake in a bucket: GX's file stores stay on a file system
            return self.delivery_dir / "quality"
        return self.lake_root / "quality"

    @property
    def extracts_root(self) -> Path:
        return self.delivery_dir / "extracts"

    @property
    def reports_root(self) -> Path:
        return self.delivery_dir / "reports"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

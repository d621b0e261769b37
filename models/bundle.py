"""The fitted forecaster as one object: a model per horizon plus the settings it was trained with.

Its own module so that the registry (which saves and loads it) and the forecaster (which builds and uses
it) both import it without importing each other.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .calibration import ALPHA_BOUNDS, ALPHA_SIDE, GAMMA, MIN_SITE_SCORES, WINDOW_DAYS, horizon_settings
from .features import FeatureConfig, steps_per_day
from .gbm import HorizonModel

MODEL_NAME = "charging_demand_gbm_quantile"
MODEL_CODE_VERSION = "1.0"


@dataclass
class ForecastBundle:
    """Everything needed to forecast: one :class:`HorizonModel` per trained horizon (in steps) + settings."""
    freq: str
    horizons: tuple[int, ...]
    models: dict[int, HorizonModel]
    config: FeatureConfig
    gaps: str = "zero"
    sites: list[str] = field(default_factory=list)
    train_start: str | None = None
    train_end: str | None = None
    data_version: str | None = None
    model_version: str | None = None
    created_at: str | None = None
    metrics: dict | None = None
    code_version: str = MODEL_CODE_VERSION
    # what the caller knows about the run that trained it (e.g. the pipeline's as-of day and feature cut-off)
    run_info: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        return {
            "model_name": MODEL_NAME, "code_version": self.code_version, "model_version": self.model_version,
            "data_version": self.data_version, "freq": self.freq, "horizons_steps": list(self.horizons),
            "training_window": {"start": self.train_start, "end": self.train_end},
            "n_sites": len(self.sites), "sites": self.sites, "gaps": self.gaps,
            "features": asdict(self.config), "created_at": self.created_at,
            "n_train_rows": {str(h): m.n_train_rows for h, m in self.models.items()},
            "train_window_days": {str(h): m.info.get("train_window_days") for h, m in self.models.items()},
            "served": {str(h): getattr(m, "served", "model") for h, m in self.models.items()},
            "calibration": {str(h): getattr(m, "calibration", {}) for h, m in self.models.items()},
            "interval_calibration": {
                "method": "rolling per-site adaptive conformal (models.calibration)", "window_days": WINDOW_DAYS,
                "miss_share_per_side": ALPHA_SIDE, "min_site_scores": MIN_SITE_SCORES,
                "adaptive_step": GAMMA, "adaptive_level_bounds": list(ALPHA_BOUNDS),
                # per trained horizon: the adaptive step and the recency half-life of the scores (None: equal)
                "per_horizon": {str(h): horizon_settings(h, steps_per_day(self.freq)) for h in self.models},
                "validation_scores": {str(h): len((getattr(m, "residuals", None) or {}).get("lo", ()))
                                      for h, m in self.models.items()}},
            "blend": {str(h): getattr(m, "blend", {}) for h, m in self.models.items()},
            "level_variant": {str(h): getattr(m, "level_variant", None) for h, m in self.models.items()},
            "validation_mae": {str(h): m.info.get("val_mae") for h, m in self.models.items()},
            "run_info": getattr(self, "run_info", {}),     # bundles pickled before the field existed
        }

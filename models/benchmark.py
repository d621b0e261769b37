"""Run the backtest CLI on every charging dataset and print the results table (markdown).

Each dataset is converted by :mod:`models.datasets` into the generic CSV in a work dir (not the repo), then
``python -m models.forecast backtest`` is run on it for each horizon (in-process, same code path)::

    python -m models.benchmark --work /tmp/fc_bench [--horizons 1,24,168] [--only urbanev_shenzhen_zone]
        [--no-fallback] [--no-calibration] [--no-level]   # ablations: without the safety net / calibration /
                                                          # daily level x hourly shape candidates
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from . import datasets, forecast


# The committed 3-day sample is a format check, not a benchmark (no refit check, no calibration, no week
# before the first 168 h forecast): run it by name. The generated world's benchmark is the 165-day world
# (python -m jobs.forecast.plan_backtest).
SMOKE_ONLY = ("generated_station",)


def run(work: Path, horizons=(1, 24, 168), only: list[str] | None = None, extra: tuple[str, ...] = ()) -> list[dict]:
    rows = []
    for name, (loader, holidays) in datasets.DATASETS.items():
        if (only and name not in only) or (not only and name in SMOKE_ONLY):
            continue
        try:
            df = loader()
        except FileNotFoundError as e:
            print(f"skip {name}: {e}")
            continue
        csv = work / "inputs" / f"{name}.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(csv, index=False)
        for h in horizons:
            out = work / name / f"h{h}"
            t0 = time.time()
            try:
                forecast.main(["backtest", "--input", str(csv), "--freq", "H", "--horizon", str(h),
                               "--out", str(out), "--holidays", holidays, "--title", f"{name}, horizon {h} h", *extra])
            except ValueError as e:
                print(f"{name} h={h}: {e}")
                rows.append({"dataset": name, "horizon": h, "error": str(e)})
                continue
            m = json.loads((out / "metrics.json").read_text())
            rows.append({"dataset": name, "horizon": h, "runtime_s": round(time.time() - t0, 1), "metrics": m})
    return rows


SERVED_ABBR = {"model": "gbm", "snaive_daily": "day", "snaive_weekly": "week", "level_shape": "lvl",
               "gbm_level_mix": "mix"}


def _f(x, nd=3):
    return "n/a" if x is None else f"{x:.{nd}f}"


def table(rows: list[dict]) -> str:
    head = ("| dataset | h | sites | scored rows | MAE model (P50) | MAE snaive day | MAE snaive week | "
            "model / week | model / day | MAE all-zero | bias model % | WAPE model % | sMAPE model % | "
            "P10-P90 cover | below P10 / above P90 | train window per refit | served per refit | run s |")
    lines = [head, "|" + "|".join(["---"] * 18) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['dataset']} | {r['horizon']} | | | {r['error']} |" + " |" * 13)
            continue
        m = r["metrics"]
        ov, st = m["overall"], m["setup"]
        if not ov:
            lines.append(f"| {r['dataset']} | {r['horizon']} | {st['n_sites']} | 0 | (nothing to score) |"
                         + " |" * 13)
            continue
        mo, d, w = ov["model"], ov.get("snaive_daily"), ov.get("snaive_weekly")
        lines.append(
            f"| {r['dataset']} | {r['horizon']} | {st['n_sites']} | {ov['n']} | {_f(mo['mae'])} | "
            f"{_f(d and d['mae'])} | {_f(w and w['mae'])} | **{_f(mo.get('rel_mae_vs_snaive_weekly'), 2)}** | "
            f"{_f(mo.get('rel_mae_vs_snaive_daily'), 2)} | {_f(ov['mae_zero_forecast'])} | "
            f"{_f(mo['bias_pct'], 0)} | {_f(mo['wape_pct'], 0)} | {_f(mo['smape_pct'], 0)} | "
            f"{_f(mo['coverage_p10_p90'], 2)} | {_f(mo.get('below_p10'), 2)} / {_f(mo.get('above_p90'), 2)} | "
            f"{','.join(str(x) for x in st['train_window_chosen_per_refit'])} | "
            f"{','.join(SERVED_ABBR.get(x, x) for x in st.get('served_per_refit', []))} | {r['runtime_s']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/fc_bench")
    ap.add_argument("--horizons", default="1,24,168")
    ap.add_argument("--only", default=None, help="comma-separated dataset names (default: every real dataset; "
                    "generated_station, the committed 3-day sample, only when named)")
    ap.add_argument("--no-fallback", action="store_true", help="ablation: never serve a seasonal-naive baseline")
    ap.add_argument("--no-calibration", action="store_true", help="ablation: raw GBM P10/P90")
    ap.add_argument("--no-level", action="store_true", help="ablation: no daily level x hourly shape candidates")
    a = ap.parse_args(argv)
    work = Path(a.work)
    extra = tuple(f for f, on in (("--no-fallback", a.no_fallback), ("--no-calibration", a.no_calibration),
                                  ("--no-level", a.no_level)) if on)
    rows = run(work, tuple(int(h) for h in a.horizons.split(",")), a.only.split(",") if a.only else None, extra)
    md = table(rows)
    (work / "results.md").write_text(md + "\n")
    (work / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""spark-submit entry point for any project job, run as a module (as `python -m` does):

    PYTHONPATH=. spark-submit $(python -m jobs.platform.session submit-args) scripts/spark_job.py jobs.ingest.runner --all --to 2026-11-07

spark-submit runs a file, and a file under jobs/ would put its own folder first on sys.path, where
module names such as jobs/ingest/casting.py would shadow the standard library's.
"""
import runpy
import sys

if len(sys.argv) < 2:
    sys.exit("usage: spark_job.py <module> [arguments...]")
module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)

"""Benchmark of the pipeline (issue 7) and the peers it is measured against (DuckDB SQL, pandas)."""

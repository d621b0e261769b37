"""Benchmark of the pipeline and the peers it is measured against (DuckDB SQL, pandas)."""

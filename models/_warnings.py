"""Silence NumPy's expected RuntimeWarnings (all-NaN slices) inside a block."""
from __future__ import annotations


class _quiet:
    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        return self._w.__exit__(*a)

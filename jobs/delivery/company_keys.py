"""Hashed company keys for delivery paths (extract packs, HTML reports).

A company id never appears raw in a path that is handed out: a folder or file name is
``c_`` + the first 16 hex digits of sha256(salt + company_id). The salt is
``Settings.company_key_salt``; a deployment sets a private value so keys cannot be recomputed from
the public ids, and every delivery module derives its names here so they agree.
"""
from __future__ import annotations

import hashlib

from jobs.platform.settings import Settings, get_settings

KEY_PREFIX = "c_"
KEY_HEX_DIGITS = 16


def company_key(company_id: str, settings: Settings | None = None) -> str:
    """``c_`` + 16 hex digits of sha256(salt + company_id), e.g. ``c_3f9a...``."""
    if not company_id:
        raise ValueError("company_id must be a non-empty string")
    salt = (settings or get_settings()).company_key_salt
    digest = hashlib.sha256((salt + company_id).encode("utf-8")).hexdigest()
    return KEY_PREFIX + digest[:KEY_HEX_DIGITS]

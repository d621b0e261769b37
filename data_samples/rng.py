"""Named random streams.

Every entity draws from its own stream, seeded from (world seed, purpose, entity id) through
``random.Random(str)`` (SHA-512 of the string: independent of PYTHONHASHSEED and of process layout).
So a truck's trips do not change when another truck is added, a worker process simulates the same
truck the same way as a single process, and the fault streams are separate from the physics streams:
``--fault-rate 0`` and ``--fault-rate 0.05`` describe the same physical world.
"""
from __future__ import annotations

import random


def stream(seed: int, purpose: str, *ids: object) -> random.Random:
    return random.Random(":".join([str(seed), purpose, *map(str, ids)]))

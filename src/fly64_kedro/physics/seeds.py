"""Seed registry: every random draw of the study derives from one root seed."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(root_seed: int, *keys: str | float) -> int:
    """Return a 32-bit seed derived from ``root_seed`` and a path of keys.

    Different key paths give statistically independent streams (numpy ``SeedSequence``
    spawn keys); the same path always gives the same seed, on every machine.
    """
    spawn_key = tuple(zlib.crc32(str(key).encode()) for key in keys)
    sequence = np.random.SeedSequence(entropy=int(root_seed), spawn_key=spawn_key)
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def rng_for(root_seed: int, *keys: str | float) -> np.random.Generator:
    """A seeded numpy Generator for the stream named by ``keys``."""
    return np.random.default_rng(derive_seed(root_seed, *keys))

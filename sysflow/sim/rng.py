"""A small seeded random stream per simulated host (SplitMix64).

A ``random.Random`` holds 2.5 KB of Mersenne Twister state; a simulated fleet keeps one stream per
host, so 10,000 hosts cost 25 MB for generators alone. :class:`HostRandom` keeps one 64-bit integer
and offers what the simulator draws (``random``, ``normalvariate``, ``lognormvariate``), with
CPython's algorithms on top of its own uniform source, reproducibly from a string seed.
"""

from __future__ import annotations

import hashlib
import math
from typing import Protocol

__all__ = ["HostRandom", "Stream"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_NV_MAGICCONST = 4 * math.exp(-0.5) / math.sqrt(2.0)  # as random.normalvariate (Kinderman-Monahan)


class Stream(Protocol):
    """What the simulator draws from (``random.Random`` satisfies it too)."""

    def random(self) -> float: ...

    def lognormvariate(self, mu: float, sigma: float) -> float: ...


class HostRandom:
    """SplitMix64 seeded from the SHA-256 of ``seed``; 53-bit floats in [0, 1)."""

    __slots__ = ("_state",)

    def __init__(self, seed: str) -> None:
        self._state = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")

    def random(self) -> float:
        self._state = state = (self._state + _GOLDEN) & _MASK
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))

    def normalvariate(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        while True:
            u1 = self.random()
            u2 = 1.0 - self.random()
            z = _NV_MAGICCONST * (u1 - 0.5) / u2
            if z * z / 4.0 <= -math.log(u2):
                return mu + z * sigma

    def lognormvariate(self, mu: float, sigma: float) -> float:
        return math.exp(self.normalvariate(mu, sigma))

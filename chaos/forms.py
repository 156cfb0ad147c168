"""How big each scenario runs: `short` for CI, `long` on demand (`make chaos CHAOS=long`).

A seed makes the random moments of a run repeatable: CHAOS_SEED=<n>.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Form:
    name: str
    seed: int

    @property
    def long(self) -> bool:
        return self.name == "long"

    def pick(self, short: int, long: int) -> int:
        return long if self.long else short

    def rng(self, scenario: str) -> random.Random:
        return random.Random(f"{self.seed}:{scenario}")


def form_from(name: str) -> Form:
    if name not in ("short", "long"):
        raise SystemExit(f"chaos: form must be short or long, not {name!r}")
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 10**6))
    return Form(name, seed)

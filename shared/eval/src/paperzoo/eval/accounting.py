"""Token and cost accounting for a run.

Prices are US dollars per million tokens (input, output), from a small table that
:func:`load_prices` extends or overrides with a JSON file (``{"model": [input, output]}``).
A model missing from the table is counted in tokens and priced at 0, and the summary says that
its cost is unknown rather than inventing one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PRICES", "Usage", "load_prices"]

# USD per 1M tokens (input, output), list prices as published by the providers; override
# with --prices FILE when they change or for another provider.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}


def load_prices(path: str | os.PathLike[str] | None = None) -> dict[str, tuple[float, float]]:
    prices = dict(DEFAULT_PRICES)
    if path:
        raw = json.loads(Path(path).read_text())
        for model, pair in raw.items():
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise ValueError(f"{path}: {model!r} needs [input, output] USD per 1M tokens")
            prices[model] = (float(pair[0]), float(pair[1]))
    return prices


@dataclass
class Usage:
    """Requests, retries, cache hits and tokens, per model."""

    prices: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    requests: int = 0  # HTTP attempts sent, retries included
    retries: int = 0
    cache_hits: int = 0
    tokens: dict[str, list[int]] = field(default_factory=dict)  # model -> [prompt, completion]

    def add(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        t = self.tokens.setdefault(model, [0, 0])
        t[0] += prompt_tokens
        t[1] += completion_tokens

    def add_cached(self) -> None:
        self.cache_hits += 1

    def cost(self) -> tuple[float, list[str]]:
        """(USD, the models without a price)."""
        total, unknown = 0.0, []
        for model, (prompt, completion) in self.tokens.items():
            if model not in self.prices:
                unknown.append(model)
                continue
            inp, out = self.prices[model]
            total += (prompt * inp + completion * out) / 1e6
        return total, unknown

    def summary(self) -> dict[str, Any]:
        usd, unknown = self.cost()
        return {
            "requests": self.requests,
            "retries": self.retries,
            "cache_hits": self.cache_hits,
            "tokens": {m: {"prompt": p, "completion": c} for m, (p, c) in self.tokens.items()},
            "cost_usd": round(usd, 6),
            "unpriced_models": unknown,
        }

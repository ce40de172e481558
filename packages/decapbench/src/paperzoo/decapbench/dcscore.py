"""DCScore: the scoring rule and the reading of the judge's answers, without any I/O.

The rule is the official evaluation's (``eval/evaluation_decapbench.py`` in
MAGAer13/DeCapBench), for one caption with its extracted units, one matching sample and one
verification sample:

- precision P = verified units / units;
- recall R: a verified unit matched to oracle fact ``o`` adds ``1/k``, where ``k`` is how
  many units (verified or not) the matching maps to ``o``; a verified unit matched to nothing
  adds 1 to the numerator and 1 to the oracle total; R = that sum / (oracle facts + those);
- F1 = 2PR / (P + R + 1e-8) (the official epsilon, kept for equal numbers);
- the same over the relevant units only (``relevance`` 1). Every oracle fact counts as
  relevant, as in the official script.

An image's scores are the means over its 3 x 3 (verification, matching) pairs, and its
DCScore is (F1 + F1_relevant) / 2 x 100; the benchmark's is the mean over images.

Where the official script is wrong or crashes, this module differs, on purpose:

- the relevant-only recall uses the relevant units' own ``k`` (the script divides by the
  ``k`` counted over all units, so a relevant unit sharing its oracle fact with an irrelevant
  one is under-credited);
- a unit without ``relevance`` counts as relevant (the script raises ``KeyError``; the
  extraction prompt's own examples leave it out on a plain existence fact);
- a judge answer that drops, adds or renames units is unreadable (:class:`ValueError`, asked
  again by the caller) instead of an ``assert``; units are aligned by their text, or by
  position when the answer has the same number of entries;
- a caption with no units (or no relevant ones) scores 0 on that side rather than dividing by
  zero.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Unit",
    "image_scores",
    "parse_json_list",
    "parse_matching",
    "parse_units",
    "parse_verification",
    "precision_recall",
    "units_json",
]

EPS = 1e-8


@dataclass(frozen=True)
class Unit:
    """A primitive information unit extracted from a caption."""

    fact: str
    relevance: int = 1
    identifier: str | None = None

    def wire(self) -> dict[str, Any]:
        """The unit as the matching and verification prompts show it (no relevance)."""
        d: dict[str, Any] = {"fact": self.fact}
        if self.identifier is not None:
            d["identifier"] = self.identifier
        return d


def units_json(entries: Sequence[dict[str, Any]]) -> str:
    """A list of dicts as the official prompts show it: a fenced JSON list, one per line."""
    body = "".join(f"  {json.dumps(d, ensure_ascii=False)},\n" for d in entries)
    return "```json[\n" + body + "]\n```"


_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.S)


def parse_json_list(text: str) -> list[Any]:
    """The JSON (or Python-literal) list in a judge's answer, fenced or bare."""
    candidates = [*[m.group(1) for m in _FENCE.finditer(text)][::-1], text]
    for candidate in candidates:
        candidate = candidate.strip().strip("`").strip()
        start, end = candidate.find("["), candidate.rfind("]")
        if start < 0 or end < start:
            continue
        snippet = candidate[start : end + 1]
        for load in (json.loads, ast.literal_eval):
            try:
                value = load(snippet)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
            if isinstance(value, list):
                return value
    raise ValueError(f"no JSON list in the answer: {text[:200]!r}")


def _binary(value: Any, field: str) -> int:
    if isinstance(value, str) and value.strip() in ("0", "1"):
        value = int(value.strip())
    if isinstance(value, bool) or value not in (0, 1):
        raise ValueError(f"{field} must be 0 or 1, got {value!r}")
    return int(value)


def parse_units(text: str) -> list[Unit]:
    """The extraction answer: ``[{"fact", "identifier"?, "relevance" 0/1}, ...]``."""
    units = []
    for entry in parse_json_list(text):
        if not isinstance(entry, dict) or not isinstance(entry.get("fact"), str):
            raise ValueError(f"a unit must be a dict with a 'fact' string, got {entry!r}")
        ident = entry.get("identifier")
        relevance = _binary(entry["relevance"], "relevance") if "relevance" in entry else 1
        units.append(Unit(entry["fact"], relevance, None if ident is None else str(ident)))
    return units


def _aligned(units: Sequence[Unit], entries: list[Any], what: str) -> list[dict[str, Any]]:
    """``entries`` (dicts with ``fact``) in the order of ``units``: by text, else by position."""
    if not all(isinstance(e, dict) and "fact" in e for e in entries):
        raise ValueError(f"the {what} must be a list of dicts with 'fact'")
    by_text: dict[str, dict[str, Any]] = {}
    for e in entries:
        by_text.setdefault(str(e["fact"]).strip(), e)
    found = [by_text.get(u.fact.strip()) for u in units]
    unique = len(by_text) == len(entries) == len({u.fact.strip() for u in units})
    if unique and all(f is not None for f in found) and len(entries) == len(units):
        return found  # type: ignore[return-value]
    if len(entries) == len(units):
        return entries
    missing = [u.fact for u, f in zip(units, found) if f is None]
    raise ValueError(
        f"the {what} has {len(entries)} entries for {len(units)} units"
        + (f"; missing: {missing[:3]}" if missing else "")
    )


def parse_matching(text: str, units: Sequence[Unit], n_oracle: int) -> list[int | None]:
    """One matching answer: per unit, the oracle fact's index or ``None``."""
    out: list[int | None] = []
    for e in _aligned(units, parse_json_list(text), "matching"):
        m = e.get("matched_oracle_id")
        if m is None or (isinstance(m, str) and m.strip().lower() in ("none", "null", "")):
            out.append(None)
            continue
        if isinstance(m, str) and m.strip().lstrip("-").isdigit():
            m = int(m.strip())
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m < n_oracle:
            raise ValueError(f"matched_oracle_id {m!r} is not an oracle id (0..{n_oracle - 1})")
        out.append(m)
    return out


def parse_verification(text: str, units: Sequence[Unit]) -> list[int]:
    """One verification answer: per unit, 1 (correct) or 0."""
    return [
        _binary(e.get("verification"), "verification")
        for e in _aligned(units, parse_json_list(text), "verification")
    ]


def precision_recall(
    verified: Sequence[int], matched: Sequence[int | None], n_oracle: int
) -> tuple[float, float, float]:
    """(P, R, F1) of one (verification, matching) pair over the same units."""
    if not verified:
        return 0.0, 0.0, 0.0
    k = Counter(m for m in matched if m is not None)
    recalled, total = 0.0, n_oracle
    for ok, m in zip(verified, matched):
        if ok != 1:
            continue
        if m is None:
            recalled, total = recalled + 1, total + 1
        else:
            recalled += 1 / k[m]
    p = sum(verified) / len(verified)
    r = recalled / total if total else 0.0
    return p, r, 2 * p * r / (p + r + EPS)


def image_scores(
    units: Sequence[Unit],
    verifications: Sequence[Sequence[int]],
    matchings: Sequence[Sequence[int | None]],
    n_oracle: int,
) -> dict[str, float]:
    """An image's means over every (verification, matching) pair, and its DCScore."""
    relevant = [i for i, u in enumerate(units) if u.relevance == 1]
    sums = Counter[str]()
    pairs = [(v, m) for v in verifications for m in matchings]
    for v, m in pairs:
        for key, value in zip(("precision", "recall", "f1"), precision_recall(v, m, n_oracle)):
            sums[key] += value
        rel = precision_recall([v[i] for i in relevant], [m[i] for i in relevant], n_oracle)
        for key, value in zip(("precision_relevant", "recall_relevant", "f1_relevant"), rel):
            sums[key] += value
    keys = ("precision", "recall", "f1", "precision_relevant", "recall_relevant", "f1_relevant")
    means = {key: sums[key] / len(pairs) for key in keys}
    means["dcscore"] = (means["f1"] + means["f1_relevant"]) / 2 * 100
    return means

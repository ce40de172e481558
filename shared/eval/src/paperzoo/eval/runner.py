"""The evaluation runner: a benchmark's items, the model under test, the judge, one JSONL.

A :class:`Benchmark` says how to load its items, what to ask the model under test, how to
score one answer (usually by asking a judge) and how to aggregate. :func:`evaluate` runs it:

- every finished item is appended to ``OUT/items.jsonl`` and flushed as soon as it is scored,
  so a run killed at any moment loses at most the items in flight;
- ``resume=True`` reads that file back (a line cut short by the kill is dropped), asks only for
  the items it lacks, and ends with the scores an uninterrupted run gives; together with the
  response cache, an answer that arrived before the kill is not paid for again;
- a judge answer that cannot be parsed is asked again (:func:`ask_parsed`, a bounded number of
  times, each re-ask its own cache entry) and then recorded as a failed item, counted in the
  summary, never dropped;
- ``OUT/summary.json`` holds the overall and per-group scores, the counts of items scored and
  failed, and the requests, tokens and cost of the model and the judge.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from paperzoo.eval.client import ChatClient, ChatRequest, ChatResponse, RequestFailed

__all__ = [
    "Benchmark",
    "MalformedOutput",
    "RunMismatch",
    "ask_parsed",
    "ask_parsed_samples",
    "evaluate",
    "format_summary",
    "group_means",
    "read_predictions",
]

T = TypeVar("T")


class MalformedOutput(ValueError):
    """A model's answer that the benchmark cannot read (bad JSON, missing fields)."""


class RunMismatch(RuntimeError):
    """``--resume`` into a folder whose run had other settings, or a new run into a used one."""


class Benchmark:
    """The interface a benchmark package implements (registered as a ``MetricSpec`` whose
    factory returns an instance, tagged ``"benchmark"``).

    Items are dicts with a unique string ``"id"`` and, optionally, a ``"group"`` (task,
    class, aspect) that the summary breaks the score down by.
    """

    name: str = ""
    needs_judge: bool = False
    # Answers asked of the model under test per item (pass@k-style benchmarks ask several).
    samples: int = 1
    # "path": predictions are files (answer images); relative ones are read from the
    # predictions file's folder.
    prediction_kind: str = "text"

    def load(self, data: Path) -> list[dict[str, Any]]:
        raise NotImplementedError

    def request(self, item: dict[str, Any]) -> ChatRequest:
        """What the model under test is asked for ``item``."""
        raise NotImplementedError

    async def score(
        self, item: dict[str, Any], predictions: Sequence[str], judge: ChatClient | None
    ) -> dict[str, Any]:
        """The item's result: a dict with a numeric ``"score"`` and anything worth keeping.
        Raise :class:`MalformedOutput` when an answer cannot be read."""
        raise NotImplementedError

    def aggregate(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Overall and per-group scores of the scored items (default: means of ``score``)."""
        return group_means(records)

    def read_predictions(self, path: Path) -> dict[str, list[str]]:
        """Item id -> answers, from ``--predictions`` (default: :func:`read_predictions`;
        a benchmark overrides it to read its official output format too)."""
        return read_predictions(path, paths=self.prediction_kind == "path")

    def finish(
        self, out: Path, items: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """Called once all items are done, with the scored records: write what the
        benchmark makes besides scores (e.g. a training set) under ``out`` and return entries
        for ``summary.json``. Default: nothing."""
        return {}


def group_means(records: Sequence[dict[str, Any]], scale: float = 1.0) -> dict[str, Any]:
    """``{"overall": mean score, "groups": {group: mean}}`` over ``records``' results."""
    scores: dict[str, list[float]] = {}
    for rec in records:
        scores.setdefault(rec.get("group") or "all", []).append(float(rec["result"]["score"]))
    everything = [s for values in scores.values() for s in values]
    mean = lambda v: scale * sum(v) / len(v) if v else float("nan")  # noqa: E731
    return {"overall": mean(everything), "groups": {g: mean(v) for g, v in sorted(scores.items())}}


async def _ask(
    client: ChatClient, request: ChatRequest, read: Callable[[ChatResponse], T], tries: int
) -> T:
    problems = []
    for attempt in range(tries):
        response = await client.complete(dataclasses.replace(request, attempt=attempt))
        try:
            return read(response)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
    raise MalformedOutput(f"{tries} unreadable answers: " + "; ".join(problems))


async def ask_parsed(
    client: ChatClient, request: ChatRequest, parse: Callable[[str], T], tries: int = 3
) -> tuple[T, str]:
    """Ask ``request`` and ``parse`` the answer, asking again (``attempt`` 1, 2, ...: each its
    own cache entry) while ``parse`` raises ``ValueError``/``KeyError``/``TypeError``; after
    ``tries`` answers that cannot be read, raise :class:`MalformedOutput`. Returns (parsed,
    raw text)."""
    return await _ask(client, request, lambda r: (parse(r.text), r.text), tries)


async def ask_parsed_samples(
    client: ChatClient, request: ChatRequest, parse: Callable[[str], T], tries: int = 3
) -> list[T]:
    """:func:`ask_parsed` for a request of ``n`` samples: every answer parsed, and the request
    asked again whole while any of them cannot be read."""
    return await _ask(client, request, lambda r: [parse(text) for text in r.texts], tries)


def read_predictions(path: str | os.PathLike[str], paths: bool = False) -> dict[str, list[str]]:
    """``{"id": ..., "prediction": str}`` or ``{"id": ..., "predictions": [str, ...]}`` per
    JSONL line; a bad line is an error that names it. With ``paths``, predictions are file
    paths, and relative ones are made absolute against the predictions file's folder."""
    out: dict[str, list[str]] = {}
    base = Path(path).resolve().parent
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                preds = row["predictions"] if "predictions" in row else [row["prediction"]]
                out[str(row["id"])] = [str(base / p) if paths else str(p) for p in preds]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}:{n}: expected {{'id', 'prediction'}} or {{'id', 'predictions'}} "
                    f"JSON, got {line.strip()[:120]!r} ({exc})"
                ) from None
    return out


class _Ledger:
    """``OUT/items.jsonl``: the records so far, and an append-and-flush writer."""

    def __init__(self, path: Path, resume: bool, retry_failed: bool) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        if path.exists() and path.stat().st_size:
            if not resume:
                raise RunMismatch(
                    f"{path} already holds a run: pass --resume to continue it, or a new --out"
                )
            good = 0
            with open(path, "rb") as fh:
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # the write the kill cut short
                    rec = json.loads(line)
                    if not (retry_failed and rec["status"] == "failed"):
                        self.records[rec["id"]] = rec
                    good += len(line)
            if retry_failed or good != path.stat().st_size:
                self._rewrite()
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in self.records.values():
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def append(self, rec: dict[str, Any]) -> None:
        self.records[rec["id"]] = rec
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def _check_run(out: Path, settings: dict[str, Any], resume: bool) -> None:
    path = out / "run.json"
    if path.is_file() and resume:
        before = json.loads(path.read_text())
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise RunMismatch(
                f"{out} holds a run with other settings ({changed}); resume it with the same "
                "ones, or use a new --out"
            )
    path.write_text(json.dumps(settings, indent=1))


async def evaluate(
    benchmark: Benchmark,
    items: Iterable[dict[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    model: ChatClient | None = None,
    judge: ChatClient | None = None,
    predictions: dict[str, list[str]] | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    settings: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``benchmark`` over ``items`` into ``out_dir`` (see the module docstring) and return
    the summary. Answers come from ``predictions`` (id -> answers) or from ``model``."""
    if (predictions is None) == (model is None):
        raise ValueError("give either predictions or a model to generate them")
    if benchmark.needs_judge and judge is None:
        raise ValueError(f"{benchmark.name} needs a judge: pass --judge-base-url/--judge-model")
    items = list(items)
    ids = [str(item["id"]) for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{benchmark.name}: item ids are not unique")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_run(out, dict(settings or {}, benchmark=benchmark.name, items=len(items)), resume)
    ledger = _Ledger(out / "items.jsonl", resume, retry_failed)
    todo = [item for item in items if str(item["id"]) not in ledger.records]
    start, done = time.perf_counter(), 0

    async def one(item: dict[str, Any]) -> None:
        nonlocal done
        rec: dict[str, Any] = {"id": str(item["id"]), "group": item.get("group")}
        try:
            if predictions is not None:
                if rec["id"] not in predictions:
                    raise MalformedOutput(f"no prediction for item {rec['id']!r}")
                answers = predictions[rec["id"]]
            else:
                assert model is not None
                request = dataclasses.replace(benchmark.request(item), n=benchmark.samples)
                answers = list((await model.complete(request)).texts)
            rec["predictions"] = answers
            rec["result"] = await benchmark.score(item, answers, judge)
            rec["status"] = "ok"
        except (MalformedOutput, RequestFailed) as exc:
            rec["status"], rec["error"] = "failed", f"{type(exc).__name__}: {exc}"
        ledger.append(rec)
        done += 1
        if progress is not None:
            progress(done, len(todo))

    try:
        # Items in flight are bounded by the clients' own concurrency; this bounds the tasks.
        width = (
            max(c.concurrency for c in (model, judge) if c is not None) if (model or judge) else 8
        )
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for item in todo:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                await one(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(min(2 * width, max(1, len(todo))))))
    finally:
        ledger.close()

    order = {i: k for k, i in enumerate(ids)}
    records = sorted(
        (r for r in ledger.records.values() if r["id"] in order), key=lambda r: order[r["id"]]
    )
    scored = [r for r in records if r["status"] == "ok"]
    summary = {
        "benchmark": benchmark.name,
        **benchmark.aggregate(scored),
        **benchmark.finish(out, items, scored),
        "items": len(items),
        "scored": len(scored),
        "failed": len(records) - len(scored),
        "failures": {r["id"]: r["error"] for r in records if r["status"] == "failed"},
        "wall_seconds_this_run": round(time.perf_counter() - start, 3),
        "asked_this_run": len(todo),
    }
    for role, client in (("model", model), ("judge", judge)):
        if client is not None:
            summary[role] = {"name": client.model, **client.usage.summary()}
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=float))
    os.replace(tmp, out / "summary.json")
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The leaderboard-style table of one run."""
    groups = summary.get("groups") or {}
    header = ["benchmark", "model", "overall", *groups, "scored", "failed", "cost $"]
    model = (summary.get("model") or {}).get("name") or "(predictions)"
    cost = sum((summary.get(r) or {}).get("cost_usd", 0.0) for r in ("model", "judge"))
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    row = [summary["benchmark"], model, fmt(summary.get("overall")),
           *(fmt(v) for v in groups.values()), str(summary["scored"]), str(summary["failed"]),
           f"{cost:.4f}"]  # fmt: skip
    widths = [max(len(h), len(c)) for h, c in zip(header, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths),
             "  ".join(c.ljust(w) for c, w in zip(row, widths))]  # fmt: skip
    if summary["failed"]:
        lines.append(f"{summary['failed']} failed items (items.jsonl has why)")
    return "\n".join(lines)

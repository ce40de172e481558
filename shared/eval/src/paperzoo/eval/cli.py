"""``paperzoo eval BENCHMARK --data PATH --out DIR ...``: one command for every benchmark.

    paperzoo eval BENCHMARK --data PATH --out DIR
        [--predictions FILE]                 # score existing outputs, or:
        [--model-base-url URL --model NAME]  # generate them with the model under test first
        [--judge-base-url URL --judge-model NAME] [--concurrency N] [--resume]
        [--set KEY=VALUE ...]                # the benchmark's options (a dataclass's fields)

``BENCHMARK`` is a registered benchmark (a ``MetricSpec`` tagged ``benchmark``; ``paperzoo
list metrics``) or an import string ``package.module:factory``. Endpoints and keys default to
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` (the judge's to ``PAPERZOO_JUDGE_BASE_URL`` /
``PAPERZOO_JUDGE_API_KEY``, then the same two). Keys never reach a log, an error, the cache or
``DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from paperzoo.eval.accounting import Usage, load_prices
from paperzoo.eval.cache import ResponseCache
from paperzoo.eval.client import ChatClient, RequestFailed, RetryPolicy
from paperzoo.eval.runner import Benchmark, RunMismatch, evaluate, format_summary

__all__ = [
    "build_parser", "configure", "default_cache_path", "load_benchmark", "main", "options",
]  # fmt: skip


def default_cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "paperzoo" / "eval-responses.sqlite"


def load_benchmark(name: str) -> Benchmark:
    """A registered benchmark by name, or ``package.module:factory``."""
    from paperzoo.core import get_metric, list_metrics
    from paperzoo.core._imports import resolve

    if ":" in name:
        return resolve(name)()
    spec = get_metric(name)
    if "benchmark" not in spec.tags:
        known = [m for m in list_metrics() if "benchmark" in get_metric(m).tags]
        raise ValueError(f"{name!r} is a metric, not a benchmark; benchmarks: {known}")
    return resolve(spec.factory)()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paperzoo eval", description=__doc__.splitlines()[0])
    p.add_argument("benchmark")
    p.add_argument("--data", required=True, help="the benchmark's data (its official layout)")
    p.add_argument("--out", required=True, type=Path, help="items.jsonl, summary.json, run.json")
    p.add_argument("--predictions", help="JSONL of {id, prediction(s)} to score")
    m = p.add_argument_group("the model under test (when there are no predictions)")
    m.add_argument("--model-base-url", default=os.environ.get("OPENAI_BASE_URL"))
    m.add_argument("--model", help="its name at that endpoint")
    m.add_argument("--model-api-key", default=None, help="default: OPENAI_API_KEY")
    m.add_argument("--model-local", metavar="PATH", type=Path,
                   help="an open-weight causal LM or VLM folder, run here with transformers "
                   "(instead of an endpoint; needs paperzoo-eval[local])")  # fmt: skip
    j = p.add_argument_group("the judge")
    j.add_argument("--judge-base-url", default=os.environ.get("PAPERZOO_JUDGE_BASE_URL")
                   or os.environ.get("OPENAI_BASE_URL"))  # fmt: skip
    j.add_argument("--judge-model")
    j.add_argument("--judge-api-key", default=None,
                   help="default: PAPERZOO_JUDGE_API_KEY, then OPENAI_API_KEY")  # fmt: skip
    j.add_argument("--judge-local", metavar="PATH", type=Path,
                   help="an open-weight judge folder, run here with transformers")  # fmt: skip
    p.add_argument("--device", default=None, help="for --model-local/--judge-local (default: "
                   "cuda when available)")  # fmt: skip
    r = p.add_argument_group("requests")
    r.add_argument("--concurrency", type=int, default=8, help="requests in flight per endpoint")
    r.add_argument("--rpm", type=float, default=None, help="requests per minute per endpoint")
    r.add_argument("--max-attempts", type=int, default=6)
    r.add_argument("--timeout", type=float, default=120.0, help="seconds per attempt")
    r.add_argument("--cache", type=Path, default=None, help=f"default: {default_cache_path()}")
    r.add_argument("--no-cache", action="store_true")
    r.add_argument("--prices", help='JSON {"model": [USD/1M input, USD/1M output]}')
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--retry-failed", action="store_true", help="with --resume: ask failed items again"
    )
    p.add_argument("--limit", type=int, default=None, help="the first N items only")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a benchmark option (repeatable), e.g. --set level=visual_cot")  # fmt: skip
    return p


def configure(benchmark: Benchmark, overrides: list[str]) -> Benchmark:
    """``benchmark`` with ``KEY=VALUE`` options applied to its dataclass fields (type-checked)."""
    from paperzoo.core.config import apply_overrides

    if not overrides:
        return benchmark
    if not dataclasses.is_dataclass(benchmark):
        raise ValueError(f"{benchmark.name} has no options (--set {overrides[0]})")
    return apply_overrides(benchmark, overrides)


def options(benchmark: Benchmark) -> dict[str, Any]:
    """The benchmark's options as recorded in ``run.json`` (its dataclass fields)."""
    if not dataclasses.is_dataclass(benchmark):
        return {}
    return json.loads(json.dumps(dataclasses.asdict(benchmark), default=str))


def _client(args: argparse.Namespace, role: str, cache: ResponseCache | None) -> Any:
    local = args.model_local if role == "model" else args.judge_local
    if local is not None:
        from paperzoo.eval.local import LocalChatClient

        return LocalChatClient(path=local, device=args.device, cache=cache)
    model = args.model if role == "model" else args.judge_model
    base_url = args.model_base_url if role == "model" else args.judge_base_url
    if not model or not base_url:
        flags = ("--model", "--model-base-url", "--model-local") if role == "model" else (
            "--judge-model", "--judge-base-url", "--judge-local")  # fmt: skip
        raise ValueError(f"the {role} needs {flags[0]} NAME and {flags[1]} URL, or {flags[2]} PATH")
    key = args.model_api_key if role == "model" else (
        args.judge_api_key or os.environ.get("PAPERZOO_JUDGE_API_KEY")
    )  # fmt: skip
    return ChatClient(
        model=model, base_url=base_url, api_key=key, concurrency=args.concurrency,
        requests_per_minute=args.rpm, cache=cache,
        retry=RetryPolicy(max_attempts=args.max_attempts, timeout=args.timeout),
        usage=Usage(prices=load_prices(args.prices)),
    )  # fmt: skip


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    benchmark = configure(load_benchmark(args.benchmark), args.set)
    items = benchmark.load(Path(args.data))
    if args.limit is not None:
        items = items[: args.limit]
    cache = None if args.no_cache else ResponseCache(args.cache or default_cache_path())
    predictions = benchmark.read_predictions(Path(args.predictions)) if args.predictions else None
    if predictions is None and not (args.model or args.model_local):
        raise ValueError(
            "give --predictions FILE, or the model under test to generate them: --model NAME "
            "(and --model-base-url URL) or --model-local PATH"
        )
    model = _client(args, "model", cache) if predictions is None else None
    judge = _client(args, "judge", cache) if benchmark.needs_judge else None
    settings = {
        "data": str(Path(args.data).resolve()),
        "predictions": str(Path(args.predictions).resolve()) if args.predictions else None,
        "model": (str(args.model_local.resolve()) if args.model_local else args.model)
        if model
        else None,
        "model_base_url": args.model_base_url if model and not args.model_local else None,
        "judge_model": (str(args.judge_local.resolve()) if args.judge_local else args.judge_model)
        if judge
        else None,
        "judge_base_url": args.judge_base_url if judge and not args.judge_local else None,
        "limit": args.limit,
        "options": options(benchmark),
    }

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            print(f"[eval] {done}/{total} items", file=sys.stderr, flush=True)

    try:
        return await evaluate(
            benchmark, items, args.out, model=model, judge=judge, predictions=predictions,
            resume=args.resume, retry_failed=args.retry_failed, settings=settings,
            progress=progress,
        )  # fmt: skip
    finally:
        for client in (model, judge):
            if client is not None:
                await client.close()
        if cache is not None:
            cache.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.retry_failed and not args.resume:
        build_parser().error("--retry-failed continues a run: add --resume")
    try:
        summary = asyncio.run(_run(args))
    except (RunMismatch, RequestFailed, ValueError, FileNotFoundError) as exc:
        print(f"paperzoo eval: error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    print(f"wrote {args.out / 'summary.json'} and {args.out / 'items.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

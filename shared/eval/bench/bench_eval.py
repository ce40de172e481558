"""Throughput of the evaluation runner against a local server with a fixed answer latency.

    uv run nox -s bench -- eval
    python shared/eval/bench/bench_eval.py --latency 0.1 --concurrency 1 8 32

Each item is one request to the model under test (no judge), answered after ``latency``
seconds by the scripted chat-completions server on 127.0.0.1. The bound is
concurrency / latency items per second; the table gives how close the runner comes to it,
and the most requests the server saw in flight at once. No cache: every item is a request.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time

from paperzoo.eval import Benchmark, ChatClient, ChatRequest, RetryPolicy, evaluate
from paperzoo.eval.testing import ScriptedChatServer


@dataclasses.dataclass
class Echo(Benchmark):
    name = "echo"

    def request(self, item):
        return ChatRequest.of(f"item {item['id']}")

    async def score(self, item, predictions, judge):
        return {"score": float(predictions[0] == f"answer {item['id']}")}


def run(concurrency: int, latency: float, items: int) -> dict[str, float]:
    with ScriptedChatServer(lambda body, n: "answer " + body["messages"][0]["content"][5:],
                            latency=latency) as server, tempfile.TemporaryDirectory() as out:  # fmt: skip

        async def go():
            client = ChatClient(model="m", base_url=server.url, api_key="EMPTY",
                                concurrency=concurrency, retry=RetryPolicy(timeout=30))  # fmt: skip
            try:
                start = time.perf_counter()
                summary = await evaluate(Echo(), [{"id": str(i)} for i in range(items)], out,
                                         model=client)  # fmt: skip
                return time.perf_counter() - start, summary
            finally:
                await client.close()

        wall, summary = asyncio.run(go())
        assert summary["scored"] == items and summary["overall"] == 1.0, summary
        return {"items": items, "wall": wall, "rate": items / wall,
                "bound": concurrency / latency, "in_flight": server.max_in_flight}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=4.0, help="aimed wall time per setting")
    args = p.parse_args()
    print(f"runner throughput, {args.latency * 1000:.0f} ms per answer (paperzoo.eval.evaluate)")
    print(f"{'concurrency':>11} {'items':>6} {'wall s':>7} {'items/s':>8} {'bound':>7} {'ratio':>6} {'max in flight':>13}")  # fmt: skip
    for c in args.concurrency:
        n = max(16, int(args.seconds * c / args.latency))
        r = run(c, args.latency, n)
        print(f"{c:>11} {n:>6} {r['wall']:>7.2f} {r['rate']:>8.1f} {r['bound']:>7.1f} "
              f"{r['rate'] / r['bound']:>6.2f} {r['in_flight']:>13}")  # fmt: skip


if __name__ == "__main__":
    main()

"""The resumable runner and ``paperzoo eval``, against a real scripted server on 127.0.0.1.

The benchmark here is a small judged one written for the tests (``toybench.py``, imported by
the ``paperzoo eval`` subprocess by import string): the model under test answers
``question <id>``, the judge is asked ``judge <id>: <answer>`` and replies JSON ``{"score"}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from paperzoo.eval import ChatRequest, ResponseCache
from paperzoo.eval.cli import main
from paperzoo.eval.testing import Reply, ScriptedChatServer, prompt_text

N = 40
MALFORMED = {"7", "23"}  # the judge never answers these in JSON

TOYBENCH = """
import dataclasses, json
from paperzoo.eval import Benchmark, ChatRequest, ask_parsed

def parse(text):
    score = json.loads(text)["score"]
    if score not in (0, 1, 2):
        raise ValueError(f"score {score!r} is not 0, 1 or 2")
    return score

@dataclasses.dataclass
class Toy(Benchmark):
    name = "toy"
    needs_judge = True
    scale: float = 1.0

    def load(self, data):
        return [json.loads(line) for line in open(data)]

    def request(self, item):
        return ChatRequest.of(f"question {item['id']}")

    async def score(self, item, predictions, judge):
        score, raw = await ask_parsed(
            judge, ChatRequest.of(f"judge {item['id']}: {predictions[0]}"), parse
        )
        return {"score": self.scale * score}
"""


def expected_score(item_id: str) -> int:
    return int(item_id) % 3


def answer(body, n):
    text = prompt_text(body)
    kind, _, rest = text.partition(" ")
    if kind == "question":
        return f"answer {rest}"
    item_id = rest.split(":")[0]
    if item_id in MALFORMED:
        return Reply(content="I would give it a two" if n % 2 else '{"scor": 2}')
    return json.dumps({"score": expected_score(item_id), "reason": "scripted"})


@pytest.fixture
def bench(tmp_path):
    (tmp_path / "toybench.py").write_text(textwrap.dedent(TOYBENCH))
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"id": str(i), "group": "ab"[i % 2]}) + "\n" for i in range(N))
    )
    sys.path.insert(0, str(tmp_path))
    yield tmp_path, data
    sys.path.remove(str(tmp_path))
    sys.modules.pop("toybench", None)


def argv(data, out, url, cache, *extra):
    return [
        "toybench:Toy", "--data", str(data), "--out", str(out),
        "--model-base-url", url, "--model", "m", "--model-api-key", "EMPTY",
        "--judge-base-url", url, "--judge-model", "j", "--judge-api-key", "EMPTY",
        "--cache", str(cache), "--concurrency", "4", "--max-attempts", "3", *extra,
    ]  # fmt: skip


def by_hand(ids):
    """The summary the scoring rule gives: means of id % 3 over the judged items."""
    scored = [i for i in ids if i not in MALFORMED]
    groups = {g: [expected_score(i) for i in scored if "ab"[int(i) % 2] == g] for g in "ab"}
    return {
        "overall": sum(expected_score(i) for i in scored) / len(scored),
        "groups": {g: sum(v) / len(v) for g, v in groups.items()},
        "scored": len(scored),
        "failed": len(ids) - len(scored),
    }


def summary_of(out):
    return json.loads((out / "summary.json").read_text())


def test_a_run_scores_every_item_and_counts_the_malformed_ones(bench, capsys):
    tmp, data = bench
    with ScriptedChatServer(answer) as server:
        assert main(argv(data, tmp / "out", server.url, tmp / "c.sqlite")) == 0
    summary = summary_of(tmp / "out")
    assert {k: summary[k] for k in ("overall", "groups", "scored", "failed")} == by_hand(
        [str(i) for i in range(N)]
    )
    assert set(summary["failures"]) == MALFORMED
    assert "MalformedOutput: 3 unreadable answers" in summary["failures"]["7"]
    # every model prompt once; a judged item once, a malformed one 3 times (attempts 0, 1, 2)
    for i in range(N):
        assert server.asked[f"question {i}"] == 1
        assert server.asked[f"judge {i}: answer {i}"] == (3 if str(i) in MALFORMED else 1)
    records = [json.loads(line) for line in (tmp / "out" / "items.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(str(i) for i in range(N))
    table = capsys.readouterr().out
    assert "toy" in table and "2 failed items" in table
    assert summary["model"]["requests"] == N and summary["judge"]["requests"] == N + 4


def test_a_rerun_with_the_cache_pays_for_nothing(bench):
    tmp, data = bench
    with ScriptedChatServer(answer) as server:
        assert main(argv(data, tmp / "one", server.url, tmp / "c.sqlite")) == 0
        asked = len(server.requests)
        assert main(argv(data, tmp / "two", server.url, tmp / "c.sqlite")) == 0
        assert len(server.requests) == asked
    assert summary_of(tmp / "two")["overall"] == summary_of(tmp / "one")["overall"]
    assert summary_of(tmp / "two")["judge"]["cache_hits"] == N + 4


def test_a_used_folder_needs_resume_and_the_same_settings(bench, capsys):
    tmp, data = bench
    with ScriptedChatServer(answer) as server:
        out, cache = tmp / "out", tmp / "c.sqlite"
        assert main(argv(data, out, server.url, cache, "--limit", "5")) == 0
        assert main(argv(data, out, server.url, cache, "--limit", "5")) == 2
        assert "pass --resume" in capsys.readouterr().err
        assert main(argv(data, out, server.url, cache, "--resume", "--set", "scale=2")) == 2
        err = capsys.readouterr().err
        assert "other settings" in err and "limit" in err and "options" in err
        assert main(argv(data, out, server.url, cache, "--resume", "--limit", "5")) == 0
        assert summary_of(out)["asked_this_run"] == 0


def test_a_line_cut_short_is_asked_again_and_retry_failed_asks_the_failed(bench):
    tmp, data = bench
    out = tmp / "out"
    with ScriptedChatServer(answer) as server:
        assert main(argv(data, out, server.url, tmp / "c.sqlite")) == 0
        lines = (out / "items.jsonl").read_bytes().splitlines(keepends=True)
        cut = json.loads(lines[-1])["id"]
        (out / "items.jsonl").write_bytes(b"".join(lines[:-1]) + lines[-1][:25])
        assert main(argv(data, out, server.url, tmp / "c.sqlite", "--resume")) == 0
        assert summary_of(out)["asked_this_run"] == 1
        ids = [json.loads(line)["id"] for line in (out / "items.jsonl").read_text().splitlines()]
        assert sorted(ids) == sorted(str(i) for i in range(N)) and ids[-1] == cut

        before = len(server.requests)
        assert (
            main(argv(data, out, server.url, tmp / "c.sqlite", "--resume", "--retry-failed")) == 0
        )
        assert summary_of(out)["asked_this_run"] == len(MALFORMED)
        # their answers and judgements come from the cache: still nothing paid twice
        assert len(server.requests) == before and summary_of(out)["failed"] == len(MALFORMED)


def test_sigkill_mid_run_then_resume_ends_with_the_uninterrupted_scores(bench):
    """A real SIGKILL of ``paperzoo eval`` while requests are in flight, then ``--resume``.

    No item recorded before the kill is asked again. A prompt is asked once more only if a
    request for it had been sent but its answer had not reached the cache when the process
    died (in flight, or answered in the last instant), and that is at most one per request
    slot."""
    tmp, data = bench
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")]))
    with ScriptedChatServer(answer) as server:
        assert main(argv(data, tmp / "reference", server.url, tmp / "ref.sqlite")) == 0
    reference = summary_of(tmp / "reference")

    out, cache_path = tmp / "out", tmp / "c.sqlite"
    with ScriptedChatServer(answer, latency=0.05) as server:
        cmd = [sys.executable, "-m", "paperzoo.eval.cli", *argv(data, out, server.url, cache_path)]
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
        items = out / "items.jsonl"
        deadline = time.monotonic() + 60
        while not (items.exists() and items.read_bytes().count(b"\n") >= N // 3):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.2)  # let the server's handlers of the dead client's requests finish
        sent_before = dict(server.asked)
        recorded = {json.loads(line)["id"] for line in items.read_bytes().split(b"\n")[:-1]}
        assert N // 3 <= len(recorded) < N
        cache = ResponseCache(cache_path)
        unanswered = {  # prompts sent before the kill whose last attempt is not in the cache
            prompt
            for prompt, n in sent_before.items()
            if cache.get(
                ChatRequest.of(prompt, attempt=n - 1).key(
                    "m" if prompt.startswith("q") else "j", server.url
                )
            )
            is None
        }
        cache.close()
        assert main(argv(data, out, server.url, cache_path, "--resume")) == 0

    summary = summary_of(out)
    for key in ("overall", "groups", "scored", "failed"):
        assert summary[key] == reference[key], key
    # the same items failed; the reasons may read differently, because the scripted judge
    # words its bad answers by how often it was asked, and the kill costs a re-ask
    assert set(summary["failures"]) == set(reference["failures"]) == MALFORMED
    assert summary["asked_this_run"] == N - len(recorded)
    for i in map(str, range(N)):
        prompts = {f"question {i}": 1, f"judge {i}: answer {i}": 3 if i in MALFORMED else 1}
        for prompt, wanted in prompts.items():
            if i in recorded:  # finished before the kill: never asked again
                assert sent_before[prompt] == server.asked[prompt] == wanted, prompt
            else:
                again = server.asked[prompt] - wanted
                assert again == (prompt in unanswered), (prompt, again)
    assert len(unanswered) <= 2 * 4  # the model's and the judge's request slots
    ids = [json.loads(line)["id"] for line in items.read_text().splitlines()]
    assert sorted(ids) == sorted(map(str, range(N)))  # each item once, nothing lost


def test_ask_parsed_samples_asks_again_while_any_sample_is_unreadable():
    import asyncio

    from paperzoo.eval import ChatClient, ask_parsed_samples

    def answer(body, n):  # the first answer's second sample is not a number
        return Reply(content=["1", "two"] if n == 1 else ["1", "2"])

    async def go(url):
        client = ChatClient(model="j", base_url=url, api_key="EMPTY")
        try:
            return await ask_parsed_samples(client, ChatRequest.of("count", n=2), int)
        finally:
            await client.close()

    with ScriptedChatServer(answer) as server:
        assert asyncio.run(go(server.url)) == [1, 2]
    assert server.asked["count"] == 2 and all(b["n"] == 2 for b in server.requests)

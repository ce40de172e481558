"""The VQ-VA World pipeline: end to end on the shipped documents, and resuming."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from paperzoo.eval import ChatClient, RetryPolicy
from paperzoo.eval.testing import Reply, ScriptedChatServer, prompt_text
from paperzoo.vqva.pipeline import (
    STEPS,
    PipelineConfig,
    PipelineError,
    load_documents,
    main,
    prompt,
    run_pipeline,
)
from paperzoo.vqva.tiny import agent_rule, data_path, step_of

DOCS = data_path("tiny_docs/docs.jsonl")
# By hand from the shipped documents and agent_rule: single-photo has one image (dropped by
# rule, never asked); shoe-sale is classified none; cat-gallery's two images are identical
# (the filter scores 1 < 4); melting-ice, colour-wheel and bar-puzzle go through.
ASKED = {"classify": 5, "retriever": 4, "filter": 4, "instruction": 3, "rewriter": 3,
         "reasoner": 3}  # fmt: skip
KEPT = ["melting-ice#0", "colour-wheel#0", "bar-puzzle#0"]


def _run(server, out: Path, cfg: PipelineConfig | None = None):
    async def go():
        retry = RetryPolicy(max_attempts=2, base=0.01, cap=0.02, timeout=5.0)
        async with ChatClient(model="agents", base_url=server.url, retry=retry) as client:
            return await run_pipeline([DOCS], out, client, cfg or PipelineConfig(shard_size=2))

    return asyncio.run(go())


def _per_step(bodies) -> Counter:
    return Counter(step_of(b) for b in bodies)


def _key(body) -> tuple[str, str]:
    """One row of one step (the filter and the instruction generator see the same content)."""
    return step_of(body), prompt_text(body)


def test_prompts_ship_with_the_package():
    for step in STEPS:
        text = step.system(PipelineConfig())
        assert text.startswith("You are the") and "JSON only" in text and "$" not in text
    assert "at most 2 pairs" in prompt("retriever").replace("$max_pairs", "2")


def test_documents_load_and_bad_ones_are_named(tmp_path):
    docs = load_documents(DOCS)
    assert [d["doc_id"] for d in docs][:3] == ["melting-ice", "colour-wheel", "bar-puzzle"]
    assert docs[0]["image"][0][:4] == b"\x89PNG" and len(docs[0]["image"]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"interleaved": ["a", None], "flag": ["text", "image"],
                               "image": []}) + "\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"bad\.jsonl row 0: 1 image positions but 0 images"):
        load_documents(bad)


def test_end_to_end_on_the_shipped_documents(tmp_path):
    with ScriptedChatServer(agent_rule) as server:
        reports = _run(server, tmp_path / "out")
    assert all(r.complete for r in reports) and len(reports) == 6
    assert _per_step(server.requests) == ASKED
    assert max(Counter(_key(b) for b in server.requests).values()) == 1  # none asked twice
    final = sorted((tmp_path / "out" / "reasoner").glob("*.parquet"))
    assert [f.name for f in final] == ["docs-00000.parquet", "docs-00001.parquet",
                                       "docs-00002.parquet"]  # fmt: skip
    rows = [r for f in final for r in pq.read_table(f).to_pylist()]
    assert [r["id"] for r in rows] == KEPT
    assert [r["category"] for r in rows] == ["w", "d", "r"]
    docs = {d["doc_id"]: d for d in load_documents(DOCS)}
    for row in rows:  # the layout the official training code reads
        qas = json.loads(row["qas"])
        assert qas["q"].startswith("What comes next?") and qas["a"] == "The next."
        assert row["rewrite_qas"] == [f"{qas['q']} (v{k})" for k in (1, 2, 3)]
        assert row["think"].startswith(f"To answer {qas['q']!r}")
        assert row["qa_image"] == docs[row["doc_id"]]["image"][:2]
        assert row["filter_score"] == 5 and row["image_indices"] == [0, 1]
    decisions = (tmp_path / "out" / "classify" / "docs-00001.jsonl").read_text().splitlines()
    assert {json.loads(x)["id"]: next(iter(set(json.loads(x)) - {"id"})) for x in decisions} == {
        "bar-puzzle": "answer",
        "single-photo": "skipped",
    }


def test_a_rerun_of_a_finished_run_asks_nothing(tmp_path):
    with ScriptedChatServer(agent_rule) as server:
        _run(server, tmp_path / "out")
        before = len(server.requests)
        reports = _run(server, tmp_path / "out")
    assert len(server.requests) == before
    assert all(r.shards_done_before == r.shards == 3 for r in reports)


def test_interrupted_run_resumes_asking_only_what_is_missing(tmp_path):
    """The server starts refusing (HTTP 400) after K answers; the rerun asks the rest once."""
    k_answers = 9
    answered: Counter = Counter()
    state = {"healthy": False}

    def answer(body, n):
        if not state["healthy"] and sum(answered.values()) >= k_answers:
            return Reply(status=400, error="quota exceeded")
        answered[_key(body)] += 1
        return agent_rule(body, n)

    out = tmp_path / "out"
    with ScriptedChatServer(answer) as server:
        first = _run(server, out)
        assert not first[-1].complete and first[-1].failed > 0
        first_ok = sum(answered.values())
        assert first_ok == k_answers
        asked_first = len(server.requests)
        state["healthy"] = True
        second = _run(server, out)
    assert all(r.complete for r in second)
    assert max(answered.values()) == 1  # no finished row was asked again
    assert sum(answered.values()) == sum(ASKED.values())
    rerun = server.requests[asked_first:]
    assert len(rerun) == sum(ASKED.values()) - k_answers  # only what was missing
    rows = [r for f in sorted((out / "reasoner").glob("*.parquet")) for r in
            pq.read_table(f).to_pylist()]  # fmt: skip
    assert [r["id"] for r in rows] == KEPT
    assert not list(out.rglob("*.tmp"))


def test_a_line_cut_short_by_a_kill_is_dropped_and_asked_again(tmp_path):
    out = tmp_path / "out"
    with ScriptedChatServer(agent_rule) as server:
        _run(server, out, PipelineConfig(shard_size=10))
    shard = out / "classify" / "docs-00000"
    shard.with_suffix(".parquet").unlink()  # as if killed before the shard was written ...
    lines = shard.with_suffix(".jsonl").read_bytes().splitlines(keepends=True)
    shard.with_suffix(".jsonl").write_bytes(b"".join(lines[:2]) + lines[2][:10])  # ... mid-line
    for step in STEPS[1:]:  # and nothing after it ran
        for f in (out / step.name).iterdir():
            f.unlink()
    with ScriptedChatServer(agent_rule) as server:
        _run(server, out, PipelineConfig(shard_size=10))
    decided = {json.loads(x)["id"] for x in lines[:2]}
    asked_docs = [b for b in server.requests if step_of(b) == "classify"]
    # 5 documents are asked in all; the first two lines were decided (one may be the rule skip).
    assert len(asked_docs) == 5 - len(decided - {"single-photo"})


def test_other_settings_in_a_used_folder_are_refused(tmp_path):
    with ScriptedChatServer(agent_rule) as server:
        _run(server, tmp_path / "out")
        with pytest.raises(PipelineError, match="other config"):
            _run(server, tmp_path / "out", PipelineConfig(shard_size=3))


def test_malformed_answers_drop_the_row_after_tries(tmp_path):
    def answer(body, n):
        if step_of(body) == "retriever" and "ice" in prompt_text(body):
            return '{"pairs": [{"question_image": 0, "answer_image": 0, "relation": "x"}]}'
        return agent_rule(body, n)

    with ScriptedChatServer(answer) as server:
        reports = _run(server, tmp_path / "out")
    retriever = reports[1]
    assert retriever.malformed == 1 and retriever.complete
    assert _per_step(server.requests)["retriever"] == 4 + 2  # 3 tries for the bad one
    rows = [r for f in sorted((tmp_path / "out" / "reasoner").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]  # fmt: skip
    assert [r["id"] for r in rows] == KEPT[1:]


def test_the_command(tmp_path, capsys):
    from paperzoo.core import get_command

    assert get_command("vqva-pipeline").command == "paperzoo.vqva.pipeline:main"
    with ScriptedChatServer(agent_rule) as server:
        rc = main(
            [
                "--source",
                str(DOCS),
                "--out",
                str(tmp_path / "out"),
                "--base-url",
                server.url,
                "--model",
                "agents",
                "--no-cache",
                "--set",
                "shard_size=4",
            ]
        )
    assert rc == 0 and _per_step(server.requests) == ASKED
    assert sorted(p.name for p in (tmp_path / "out" / "reasoner").glob("*.parquet")) == [
        "docs-00000.parquet",
        "docs-00001.parquet",
    ]
    assert "done:" in capsys.readouterr().out
    with ScriptedChatServer(lambda body, n: Reply(status=401)) as server:
        rc = main(
            [
                "--source",
                str(DOCS),
                "--out",
                str(tmp_path / "o2"),
                "--base-url",
                server.url,
                "--model",
                "agents",
                "--no-cache",
            ]
        )
    assert rc == 1 and "rerun the same command" in capsys.readouterr().err

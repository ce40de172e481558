"""The tiny end-to-end runs on the shipped data, against scripted chat servers on 127.0.0.1.

- IntelligentBench: ``data/intelligentbench_tiny.parquet`` (6 items, 2 per class) scored from
  ``data/tiny_predictions/`` by :func:`judge_rule`, a scripted judge with a rule that can be
  checked by hand: 2 when the generated image is the ground-truth image, 0 when it is the
  question image unchanged, 1 otherwise;
- the pipeline: ``data/tiny_docs/docs.jsonl`` (6 documents) through the six steps, answered by
  :func:`agent_rule`.

    python -m paperzoo.vqva.tiny OUT
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["agent_rule", "data_path", "judge_rule", "main", "step_of"]

_MARKERS = {
    "classify": "You are the document classifier",
    "retriever": "You are the retriever",
    "filter": "You are the filter",
    "instruction": "You are the instruction generator",
    "rewriter": "You are the rewriter",
    "reasoner": "You are the reasoner",
}


def data_path(name: str) -> Path:
    """A file or folder of the package's ``data/``."""
    return Path(str(resources.files("paperzoo.vqva").joinpath(f"data/{name}")))


def _images(body: dict[str, Any]) -> list[str]:
    content = body["messages"][-1]["content"]
    return [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]


def _texts(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p.get("type") == "text")


def judge_rule(body: dict[str, Any], n: int) -> str:
    """The tiny run's judge: its three images are the question, ground-truth and generated
    ones; the score is 2 if generated == ground truth, 0 if generated == question, else 1."""
    question, truth, generated = _images(body)
    score = 2 if generated == truth else 0 if generated == question else 1
    return json.dumps({"score": score, "reason_of_score": "scripted rule"})


def step_of(body: dict[str, Any]) -> str:
    """The pipeline step a request comes from (by its system prompt)."""
    system = body["messages"][0]["content"]
    for step, marker in _MARKERS.items():
        if system.startswith(marker):
            return step
    raise ValueError(f"not a pipeline request: {system[:80]!r}")


def agent_rule(body: dict[str, Any], n: int) -> str:
    """Scripted agents for the tiny documents: the classifier goes by keywords, the retriever
    takes images 0 and 1, the filter rejects a pair of identical images, the other agents
    write text from what they are shown."""
    step, text = step_of(body), _texts(body)
    if step == "classify":
        keywords = {"ice": "world_knowledge", "cat": "world_knowledge",
                    "Colour": "design_knowledge", "puzzle": "reasoning"}  # fmt: skip
        category = next((c for k, c in keywords.items() if k in text), "none")
        return json.dumps({"category": category, "reason": "scripted"})
    if step == "retriever":
        pair = {"question_image": 0, "answer_image": 1, "relation": "the second follows"}
        return json.dumps({"pairs": [pair]})
    if step == "filter":
        first, second = _images(body)
        return json.dumps({"score": 1 if first == second else 5, "reason": "scripted"})
    if step == "instruction":
        title = re.search(r"Context:\n(.*)", text).group(1)  # type: ignore[union-attr]
        return json.dumps({"question": f"What comes next? ({title})", "answer": "The next."})
    if step == "rewriter":
        question = text.split("Question:\n", 1)[1]
        return json.dumps({"rewrites": [f"{question} (v{k})" for k in range(1, 4)]})
    question = re.search(r"Question: (.*)", text).group(1)  # type: ignore[union-attr]
    return json.dumps({"think": f"To answer {question!r}, draw what follows."})


def main(argv: list[str] | None = None) -> int:
    """Both tiny runs into ``OUT/eval`` and ``OUT/pipeline``; prints their summaries."""
    from paperzoo.eval import ChatClient
    from paperzoo.eval.cli import main as eval_main
    from paperzoo.eval.testing import ScriptedChatServer
    from paperzoo.vqva.pipeline import run_pipeline

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m paperzoo.vqva.tiny OUT", file=sys.stderr)
        return 2
    out = Path(argv[0])
    with ScriptedChatServer(judge_rule) as judge:
        rc = eval_main([
            "intelligentbench", "--data", str(data_path("intelligentbench_tiny.parquet")),
            "--predictions", str(data_path("tiny_predictions/predictions.jsonl")),
            "--out", str(out / "eval"), "--judge-base-url", judge.url,
            "--judge-model", "scripted-judge", "--no-cache",
        ])  # fmt: skip
    if rc:
        return rc
    with ScriptedChatServer(agent_rule) as agents:

        async def pipeline() -> None:
            async with ChatClient(model="scripted-agents", base_url=agents.url) as client:
                await run_pipeline([data_path("tiny_docs/docs.jsonl")], out / "pipeline",
                                   client, log=print)  # fmt: skip

        asyncio.run(pipeline())
    return 0


if __name__ == "__main__":
    sys.exit(main())

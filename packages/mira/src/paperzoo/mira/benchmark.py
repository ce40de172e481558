"""MIRA as a :class:`paperzoo.eval.Benchmark`: ``paperzoo eval mira --data ROOT ...``.

Zhou et al., "When Visualizing is the First Step to Reasoning: MIRA, a Benchmark for Visual
Chain-of-Thought", arXiv:2511.02779; official code https://github.com/aiming-lab/MIRA
(``eval_api.py``: the prompts and what is sent; ``acc.py``: the scoring and the aspects).

    paperzoo eval mira --data MIRA --out OUT --model-base-url URL --model M \\
        --set level=visual_cot --set samples=8 [--set judge=true --judge-model J]

Options (``--set KEY=VALUE``): ``level`` (direct, text_cot, visual_cot), ``samples`` (answers
per item), ``k`` (the pass@k values; default 1, 2, 4, ... up to ``samples``), ``judge`` (re-check
the exact-match failures with the judge model), ``temperature`` (default 0 for one sample, 1
for several), ``max_tokens``.

Scoring units: an item, except that ``gear_rotation``'s items n.1 and n.2 make one unit, right
only when both are. A unit's accuracy is its fraction of right samples (with one sample, right
or wrong); the overall, per-aspect and per-task scores are means over units (micro averages,
as the official acc.py sums right/total per aspect), in percent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paperzoo.eval import Benchmark, ChatClient, ChatRequest, MalformedOutput, ask_parsed
from paperzoo.eval.client import image_part
from paperzoo.mira.layout import ASPECTS, GEAR_TASK, OTHER_ASPECT, TWO_ANSWER_TASK, load_items
from paperzoo.mira.scoring import (
    extract_answer,
    judge_prompt,
    majority_vote,
    normalize,
    parse_two_answers,
    parse_verdict,
    pass_at_k,
    two_answers_match,
)

__all__ = ["LEVELS", "PROMPTS", "Mira", "build_prompt", "score_units"]

_END = "The final answer is placed in <answer></answer>."
# The official eval_api.py PROMPT_TEMPLATES (its direct_answer is our "direct").
PROMPTS: dict[str, str] = {
    "direct": "Question: {question}\n\nPlease provide the final answer directly. " + _END,
    "text_cot": (
        "Question: {question}\n\nPlease first conduct step-by-step reasoning, and then provide "
        "the final answer. " + _END
    ),
    "visual_cot": (
        "Based on the question image and the intermediate reasoning image(s) provided, please "
        "continue the reasoning to solve the problem.\n\nQuestion: {question}\n\n" + _END
    ),
}
LEVELS = tuple(PROMPTS)
_LEVEL_ALIASES = {"direct_answer": "direct", "d": "direct", "t": "text_cot", "v": "visual_cot"}
_OFFICIAL_SCENARIO = {"direct": "direct_answer", "text_cot": "text_cot", "visual_cot": "visual_cot"}
_ASPECT_ORDER = ("EG", "PBR", "ASLP", "CT", OTHER_ASPECT)
JUDGE_MAX_TOKENS = 25  # the official judge call's


def build_prompt(level: str, question: str) -> str:
    """The text part of the request at ``level`` (the official templates)."""
    return PROMPTS[level].format(question=question)


def _image(path: str) -> dict[str, Any]:
    # The bytes as they are (their type sniffed by image_part). The official script re-encodes
    # every image as RGB PNG with PIL; the shipped images are PNG already.
    return image_part(path)


@dataclasses.dataclass
class Mira(Benchmark):
    """MIRA's 20 tasks at one input level (see the module docstring)."""

    name = "mira"

    level: str = "direct"
    samples: int = 1
    k: tuple[int, ...] = ()
    judge: bool = False
    temperature: float | None = None
    max_tokens: int | None = 16384  # the official eval_api.py's

    def __post_init__(self) -> None:
        self.level = _LEVEL_ALIASES.get(self.level.lower(), self.level.lower())
        if self.level not in PROMPTS:
            raise ValueError(f"unknown MIRA level {self.level!r}; choose one of {list(LEVELS)}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")

    @property
    def ks(self) -> tuple[int, ...]:
        """The pass@k values reported: ``k``, or 1, 2, 4, ... and ``samples`` itself. Checked
        here rather than in ``__post_init__`` so that ``--set k=8 --set samples=8`` works in
        either order (each ``--set`` rebuilds the dataclass)."""
        if self.k:
            ks = tuple(sorted(set(self.k)))
        else:
            ks, k = (), 1
            while k <= self.samples:
                ks, k = (*ks, k), 2 * k
            ks = tuple(sorted({*ks, self.samples}))
        bad = [k for k in ks if not 1 <= k <= self.samples]
        if bad:
            raise ValueError(
                f"pass@k needs 1 <= k <= samples ({self.samples}); got k={bad}: "
                f"raise --set samples=N or lower --set k=..."
            )
        return ks

    @property
    def needs_judge(self) -> bool:  # type: ignore[override]
        return self.judge

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 1.0

    def load(self, data: Path) -> list[dict[str, Any]]:
        self.ks  # noqa: B018 (fail before anything is asked)
        return load_items(data, need_cot=self.level == "visual_cot")

    def read_predictions(self, path: Path) -> dict[str, list[str]]:
        """``--predictions``: our JSONL (``{id, prediction(s)}``, ids ``<task>/<uid>``), or a
        folder of the official ``eval_api.py`` outputs (``<model>_<task>.jsonl`` rows
        ``{uid, scenario, response, ...}``), of which the rows of this level are read; rows
        ``API_CALL_FAILED`` or empty are skipped, repeated rows become samples."""
        if not Path(path).is_dir():
            return super().read_predictions(path)
        scenario = _OFFICIAL_SCENARIO[self.level]
        out: dict[str, list[str]] = {}
        for file in sorted(Path(path).glob("*.jsonl")):
            task = next((t for t in ASPECTS if file.stem.endswith("_" + t)), None)
            if task is None:
                raise ValueError(f"{file}: not <model>_<task>.jsonl with one of MIRA's tasks")
            with open(file, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                        uid, response = str(row["uid"]), row["response"]
                        if row["scenario"] != scenario:
                            continue
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ValueError(
                            f"{file}:{n}: not an official result row ({exc})"
                        ) from None
                    if isinstance(response, str) and response and response != "API_CALL_FAILED":
                        out.setdefault(f"{task}/{uid}", []).append(response)
        return out

    def request(self, item: dict[str, Any]) -> ChatRequest:
        """One user message: the question image, then (visual_cot) the intermediate images in
        name order, then the prompt text, as the official eval_api.py orders them."""
        images = [item["image"], *(item["cot_images"] if self.level == "visual_cot" else [])]
        content = [*(_image(p) for p in images)]
        content.append({"type": "text", "text": build_prompt(self.level, item["question"])})
        return ChatRequest.of(
            [{"role": "user", "content": content}],
            temperature=self.sampling_temperature,
            max_tokens=self.max_tokens,
        )

    async def score(
        self, item: dict[str, Any], predictions: Sequence[str], judge: ChatClient | None
    ) -> dict[str, Any]:
        if len(predictions) != self.samples:
            raise MalformedOutput(
                f"{item['id']}: expected {self.samples} answers (samples), got "
                f"{len(predictions)}; set --set samples={len(predictions)}"
            )
        two = item["task"] == TWO_ANSWER_TASK
        answers = [extract_answer(p) for p in predictions]
        votes: list[str | None] = []
        correct: list[bool] = []
        for answer in answers:
            if answer is None:
                votes.append(None)
                correct.append(False)
            elif two:
                path, total = parse_two_answers(answer)
                votes.append(f"{path}|{total}")
                correct.append(two_answers_match(answer, item["answer1"], item["answer2"]))
            else:
                votes.append(normalize(answer))
                correct.append(normalize(answer) == normalize(item["answer"]))
        judged: dict[int, bool] = {}
        if self.judge and not two and judge is not None:
            todo = [i for i, a in enumerate(answers) if a is not None and not correct[i]]

            async def ask(i: int) -> bool:
                prompt = judge_prompt(item["question"], str(item["answer"]), predictions[i])
                request = ChatRequest.of(prompt, temperature=0.0, max_tokens=JUDGE_MAX_TOKENS)
                verdict, _ = await ask_parsed(judge, request, parse_verdict)
                return verdict

            # Identical responses are judged once (asked side by side, they would both miss
            # the cache and both be paid for).
            first = {predictions[i]: i for i in reversed(todo)}
            verdicts = dict(zip(first, await asyncio.gather(*(ask(i) for i in first.values()))))
            for i in todo:
                judged[i] = correct[i] = verdicts[predictions[i]]
        return {
            "score": sum(correct) / len(correct),
            "task": item["task"],
            "uid": item["uid"],
            "aspect": item["aspect"],
            "correct": correct,
            "answers": answers,
            "votes": votes,
            "judged": {str(i): v for i, v in judged.items()},
        }

    def aggregate(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """``overall`` (mean accuracy over units, %), ``groups`` (per task, the leaderboard
        columns, in aspect order), ``aspects``, ``units`` (per task), ``pass_at_k``
        (``{"k": {overall, aspects, groups}}``) and ``majority_vote`` (the same)."""
        units = score_units([r["result"] for r in records])
        accuracy = _table(units, lambda u: u["c"] / u["n"])
        tasks: dict[str, int] = {}
        for u in units:
            tasks[u["task"]] = tasks.get(u["task"], 0) + 1
        return {
            "overall": accuracy["overall"],
            "groups": accuracy["groups"],
            "aspects": accuracy["aspects"],
            "units": {t: tasks[t] for t in accuracy["groups"]},
            "level": self.level,
            "samples": self.samples,
            "pass_at_k": {
                str(k): _table(units, lambda u, k=k: pass_at_k(u["n"], u["c"], k)) for k in self.ks
            },
            "majority_vote": _table(units, lambda u: float(u["majority"])),
        }


def _majority_right(result: dict[str, Any]) -> bool:
    winner = majority_vote(result["votes"])
    return winner is not None and bool(result["correct"][winner])


def score_units(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items' results -> scoring units ``{task, aspect, n, c, majority}``.

    A ``gear_rotation`` item with uid ``b.s`` joins the unit ``b``: the unit's sample j is right
    when sample j of both ``b.1`` and ``b.2`` is (a sample is one attempt at the pair), and its
    majority vote when both halves' votes are; a pair missing a half (a failed item) is wrong,
    as in the official acc.py. A gear uid without a dot is a unit alone.
    """
    units: list[dict[str, Any]] = []
    pairs: dict[str, dict[str, dict[str, Any]]] = {}
    for res in results:
        if res["task"] == GEAR_TASK and "." in res["uid"]:
            base, sub = res["uid"].split(".", 1)
            if base not in pairs:
                pairs[base] = {}
                units.append({"task": res["task"], "aspect": res["aspect"], "pair": base})
            pairs[base][sub] = res
        else:
            n = len(res["correct"])
            units.append({"task": res["task"], "aspect": res["aspect"], "n": n,
                          "c": sum(res["correct"]), "majority": _majority_right(res)})  # fmt: skip
    for unit in units:
        if "pair" not in unit:
            continue
        halves = pairs[unit.pop("pair")]
        n = max(len(h["correct"]) for h in halves.values())
        one, two = halves.get("1"), halves.get("2")
        if one is None or two is None:
            unit.update(n=n, c=0, majority=False)
            continue
        both = [a and b for a, b in zip(one["correct"], two["correct"])]
        unit.update(n=n, c=sum(both), majority=_majority_right(one) and _majority_right(two))
    return units


def _table(units: list[dict[str, Any]], value: Any) -> dict[str, Any]:
    by_task: dict[str, list[float]] = {}
    by_aspect: dict[str, list[float]] = {}
    everything: list[float] = []
    for u in units:
        v = float(value(u))
        by_task.setdefault(u["task"], []).append(v)
        by_aspect.setdefault(u["aspect"], []).append(v)
        everything.append(v)

    def mean(v: list[float]) -> float:
        return 100.0 * sum(v) / len(v) if v else float("nan")

    def task_order(t: str) -> tuple[int, str]:
        return (_ASPECT_ORDER.index(ASPECTS.get(t, OTHER_ASPECT)), t)

    return {
        "overall": mean(everything),
        "aspects": {a: mean(by_aspect[a]) for a in _ASPECT_ORDER if a in by_aspect},
        "groups": {t: mean(by_task[t]) for t in sorted(by_task, key=task_order)},
    }

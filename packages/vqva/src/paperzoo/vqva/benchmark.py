"""IntelligentBench (Gou et al., "VQ-VA World: Towards High-Quality Visual Question-Visual
Answering", arXiv 2511.20573): 360 visual questions answered by an image, judged 0/1/2.

Follows the official evaluation script, ``eval/intelligent/benchmark_intelligentBench.py`` in
https://github.com/chenhuigou/VQ-VA-World:

- data: the official parquet, one row per item: ``images`` (bytes; ``[0]`` the question image,
  ``[1]`` the human answer image), ``caption`` (``q`` the question, ``a`` the answer text) and
  ``class`` in {``w``, ``d``, ``r``} (world knowledge 171, design knowledge 88, reasoning 101);
- the model under test is an image generator: its answer images come from ``--predictions``
  (JSONL ``{"id", "prediction": "path/to/image"}``, relative paths read from the file's folder;
  the id is the ``id`` column where the parquet has one, else the row number);
- the judge (gpt-4o-2024-11-20 in the paper) gets the official rubric as the system message and,
  as the user message, the question text, the question image, the ground-truth image and the
  generated image in the official order and wording, each image at ``detail: low``; temperature
  1.0, at most 500 tokens;
- its answer ``{"score", "reason_of_score"}`` is read as the official script reads it (code
  fences stripped, JSON, else the first ``"score": N`` in the text); an answer without a score
  in {0, 1, 2} is asked again (:func:`paperzoo.eval.ask_parsed`) and after ``tries`` answers the
  item is failed;
- score = sum of scores / (2 N) x 100, overall and per class, over the items that were scored.
  As in the official script, a failed item (no readable score after the re-asks, a request that
  kept failing, a missing answer image) is left out of both the sum and N: it is not a 0. The
  summary's ``failed`` counts them; ``--resume --retry-failed`` asks them again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from paperzoo.eval import Benchmark, ChatClient, ChatRequest, MalformedOutput, ask_parsed
from paperzoo.eval.client import image_mime, image_part

__all__ = [
    "CLASSES",
    "IntelligentBench",
    "export_generation_inputs",
    "intelligentbench",
    "judge_prompt",
    "load_items",
    "parse_judgement",
]

# The parquet's ``class`` codes -> the group names of the summary (the paper's table columns).
CLASSES = {"w": "world", "d": "design", "r": "reasoning"}

_FENCE_OPEN = re.compile(r"```json\s*")
_FENCE_CLOSE = re.compile(r"\s*```")
_SCORE = re.compile(r'"score":\s*(\d+)')


def judge_prompt() -> str:
    """The official judge rubric (the system message), verbatim."""
    return (
        resources.files("paperzoo.vqva").joinpath("prompts/intelligentbench_judge.txt").read_text()
    )


def parse_judgement(text: str) -> tuple[int, str | None]:
    """(score, reason) from a judge answer, read as the official script reads it: code fences
    stripped, then JSON; when that fails, the first ``"score": N`` in the text. Raises
    ``ValueError`` unless the score is 0, 1 or 2 (an integer, or a string or float of one)."""
    cleaned = _FENCE_CLOSE.sub("", _FENCE_OPEN.sub("", text)).strip()
    reason: Any = None
    try:
        answer = json.loads(cleaned)
    except json.JSONDecodeError:
        match = _SCORE.search(cleaned)
        if match is None:
            raise ValueError(f"no JSON and no '\"score\": N' in {text[:200]!r}") from None
        score: Any = match.group(1)
        found = re.search(r'"reason_of_score":\s*"([^"]*)"', cleaned)
        reason = found.group(1) if found else None
    else:
        if not isinstance(answer, dict):
            raise ValueError(f"expected a JSON object, got {type(answer).__name__}")
        if answer.get("score") is None:
            raise ValueError(f"no 'score' in {cleaned[:200]!r}")
        score, reason = answer["score"], answer.get("reason_of_score")
    if isinstance(score, bool):
        raise ValueError(f"score {score!r} is not 0, 1 or 2")
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if not isinstance(score, int) or score not in (0, 1, 2):
        raise ValueError(f"score {score!r} is not 0, 1 or 2")
    return score, None if reason is None else str(reason)


def _caption(raw: Any, where: str) -> dict[str, str]:
    if isinstance(raw, str):  # a JSON string instead of a struct
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(
                f"{where}: caption is neither a struct nor JSON: {raw[:80]!r}"
            ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("q"), str) or not raw["q"].strip():
        raise ValueError(f"{where}: caption must hold a non-empty question 'q', got {raw!r:.120}")
    answer = raw.get("a")
    return {"q": raw["q"], "a": answer if isinstance(answer, str) else ""}


def load_items(data: str | Path, id_column: str = "id") -> list[dict[str, Any]]:
    """The items of an IntelligentBench parquet file (or a folder of them, in name order).

    Each item: ``id`` (the ``id_column`` value, else the row number across the files), ``group``
    (world / design / reasoning), ``class`` (w / d / r), ``question``, ``answer_text``,
    ``question_image`` and ``answer_image`` (encoded bytes). A row that does not fit the schema is
    an error that names the file, the row and the field."""
    import pyarrow.parquet as pq

    path = Path(data)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{path}: no *.parquet files (IntelligentBench's test split)")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(
            f"{path}: no such file; download the official parquet (huggingface.co/datasets/"
            "VQVA/IntelligentBench) and pass it as --data"
        )
    items: list[dict[str, Any]] = []
    for file in files:
        table = pq.read_table(file)
        missing = {"images", "caption", "class"} - set(table.column_names)
        if missing:
            raise ValueError(
                f"{file}: not IntelligentBench's layout: missing column(s) {sorted(missing)} "
                f"(has {table.column_names}); expected images, caption {{q, a}}, class"
            )
        for n, row in enumerate(table.to_pylist()):
            where = f"{file.name} row {n}"
            images = row["images"]
            if not isinstance(images, list) or len(images) < 2:
                raise ValueError(
                    f"{where}: 'images' must hold [question image, answer image], got "
                    f"{0 if not isinstance(images, list) else len(images)} image(s)"
                )
            for k, image in enumerate(images[:2]):
                if isinstance(image, dict):  # datasets' Image feature: {bytes, path}
                    image = image.get("bytes")
                if not isinstance(image, bytes) or not image:
                    raise ValueError(f"{where}: images[{k}] is not image bytes")
                try:
                    image_mime(image)
                except ValueError as exc:
                    raise ValueError(f"{where}: images[{k}]: {exc}") from None
                images[k] = image
            code = row["class"]
            if code not in CLASSES:
                raise ValueError(f"{where}: class {code!r} is not one of {sorted(CLASSES)}")
            caption = _caption(row["caption"], where)
            raw_id = row.get(id_column) if id_column in row else len(items)
            items.append({
                "id": str(raw_id),
                "group": CLASSES[code],
                "class": code,
                "question": caption["q"],
                "answer_text": caption["a"],
                "question_image": images[0],
                "answer_image": images[1],
            })  # fmt: skip
    return items


def export_generation_inputs(data: str | Path, out: str | Path, id_column: str = "id") -> Path:
    """Write what an image generator needs to answer IntelligentBench: ``OUT/<id>.<ext>`` (the
    question image) and ``OUT/inputs.jsonl`` (``{"id", "question", "question_image"}``). Returns
    the JSONL's path. Generate one image per line and list them as ``--predictions``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for item in load_items(data, id_column):
        ext = image_mime(item["question_image"]).split("/")[1].replace("jpeg", "jpg")
        name = f"{item['id']}.{ext}"
        (out / name).write_bytes(item["question_image"])
        lines.append(json.dumps({"id": item["id"], "question": item["question"],
                                 "question_image": name}, ensure_ascii=False))  # fmt: skip
    path = out / "inputs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_NEEDS_PREDICTIONS = (
    "intelligentbench scores answer *images*, which a chat endpoint does not return: generate "
    "one image per item with your model (its inputs: the question image, images[0], and the "
    "question, caption.q; paperzoo.vqva.benchmark.export_generation_inputs(DATA, DIR) writes "
    'them), list them as JSONL lines {"id": ..., "prediction": "path/to/image.png"} (paths '
    "relative to that file), and pass it as --predictions FILE instead of --model"
)


@dataclass
class IntelligentBench(Benchmark):
    """The benchmark (see the module docstring). Options (``--set KEY=VALUE``): the judge
    request (official defaults), ``tries`` (judge answers read before an item fails), ``jpeg``
    (re-encode images as JPEG as the official script does; ``false`` sends the bytes as they are) and ``id_column``."""

    judge_temperature: float = 1.0
    judge_max_tokens: int = 500
    image_detail: str = "low"
    tries: int = 3
    jpeg: bool = True
    id_column: str = "id"

    name = "intelligentbench"
    needs_judge = True
    prediction_kind = "path"

    def load(self, data: Path) -> list[dict[str, Any]]:
        return load_items(data, self.id_column)

    def request(self, item: dict[str, Any]) -> ChatRequest:
        raise ValueError(_NEEDS_PREDICTIONS)

    def judge_request(self, item: dict[str, Any], answer_image: bytes) -> ChatRequest:
        """What the judge is asked: the official system rubric, then the interleaved
        question, question image, ground-truth image and generated image."""
        image = lambda data: image_part(data, self.image_detail, self.jpeg)  # noqa: E731
        user = [
            {"type": "text", "text": " question is: "},
            {"type": "text", "text": item["question"]},
            {"type": "text", "text": " Question image"},
            image(item["question_image"]),
            {"type": "text", "text": " GT answer image"},
            image(item["answer_image"]),
            {"type": "text", "text": "model-generated (AS) answer image"},
            image(answer_image),
        ]
        messages = [
            {"role": "system", "content": judge_prompt()},
            {"role": "user", "content": user},
        ]
        return ChatRequest.of(
            messages, temperature=self.judge_temperature, max_tokens=self.judge_max_tokens
        )

    async def score(
        self, item: dict[str, Any], predictions: Sequence[str], judge: ChatClient | None
    ) -> dict[str, Any]:
        if judge is None:
            raise ValueError("intelligentbench needs a judge: pass --judge-base-url/--judge-model")
        path = Path(predictions[0])
        try:
            answer_image = path.read_bytes()
            image_mime(answer_image)
        except OSError as exc:
            raise MalformedOutput(f"answer image of item {item['id']}: {exc}") from None
        except ValueError as exc:
            raise MalformedOutput(f"answer image {path}: {exc}") from None
        (score, reason), raw = await ask_parsed(
            judge, self.judge_request(item, answer_image), parse_judgement, tries=self.tries
        )
        return {"score": score, "reason_of_score": reason, "judge_raw": raw}

    def aggregate(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Sum / (2 N) x 100 overall and per class, over the scored records only, with the
        sums and counts it comes from."""
        points: dict[str, int] = {}
        counts: dict[str, int] = {}
        for rec in records:
            group = rec.get("group") or "all"
            points[group] = points.get(group, 0) + int(rec["result"]["score"])
            counts[group] = counts.get(group, 0) + 1
        percent = lambda p, n: 100.0 * p / (2 * n) if n else float("nan")  # noqa: E731
        total, n = sum(points.values()), sum(counts.values())
        return {
            "overall": percent(total, n),
            "groups": {g: percent(points[g], counts[g]) for g in sorted(points)},
            "points": {"overall": total, **{g: points[g] for g in sorted(points)}},
            "counts": {"overall": n, **{g: counts[g] for g in sorted(counts)}},
        }


def intelligentbench() -> IntelligentBench:
    """The registered factory (``paperzoo eval intelligentbench``)."""
    return IntelligentBench()

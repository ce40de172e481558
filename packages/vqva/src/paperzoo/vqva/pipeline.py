"""The VQ-VA World data pipeline (Gou et al., arXiv 2511.20573), as resumable steps over
interleaved web documents.

The paper's framework has two stages: preprocessing, which classifies and filters interleaved
web documents, then an agentic pipeline of five sub-modules: retriever, filter, instruction
generator, rewriter and reasoner. The official pipeline is not released; each step here is one
model call (a :class:`paperzoo.eval.ChatClient`) with its prompt in ``prompts/<step>.txt``,
written from the paper's description (the README says which detail is the paper's and which is
ours):

==============  ======================================  ===========================================
step            one call sees                           keeps / adds
==============  ======================================  ===========================================
``classify``    a document's text                       category (world / design / reasoning) or drop
``retriever``   the document, text and images in order  up to ``max_pairs`` (question, answer) pairs
``filter``      a pair, its relation, the context       ``filter_score`` (1-5); drop below min_score
``instruction`` a pair, its relation, the context       ``qas`` = JSON ``{"q", "a"}``
``rewriter``    the question                            ``rewrite_qas`` (``n_rewrites`` questions)
``reasoner``    question image, question, answer        ``think`` (the reasoning toward the answer)
==============  ======================================  ===========================================

Documents with fewer than two images are dropped before any call (a rule, ours). The last step's
shards are in the layout the official training code reads (``ThinkGenV1IterableDataset``):
``qas``, ``rewrite_qas``, ``think`` and ``qa_image`` (bytes: [question image, answer image]).

Resuming: ``OUT/<step>/<shard>.parquet`` is written atomically once all its rows are decided,
and a finished shard is never read again; ``OUT/<step>/<shard>.jsonl`` records every decided row
as soon as its answer is read (flushed), so a run killed mid-shard asks, when rerun, only for
the rows it lacks. A request that keeps failing leaves its row undecided (the rerun asks it
again); an answer that stays unreadable after ``tries`` asks drops the row, recorded as
``malformed``. Shard ``k`` of a step is built from shard ``k`` of the step before.

    paperzoo vqva-pipeline --source docs.jsonl --out OUT --base-url URL --model NAME
    python -m paperzoo.vqva.pipeline ...   (the same)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from paperzoo.eval.client import image_part

__all__ = [
    "STEPS",
    "PipelineConfig",
    "PipelineError",
    "Step",
    "StepReport",
    "load_documents",
    "main",
    "parse_json_object",
    "prompt",
    "run_pipeline",
    "run_step",
]

# The classifier's categories -> IntelligentBench's class codes.
CATEGORIES = {"world_knowledge": "w", "design_knowledge": "d", "reasoning": "r"}


class PipelineError(RuntimeError):
    """A pipeline that cannot go on: other settings in a used folder, a missing step."""


@dataclass
class PipelineConfig:
    """The pipeline's options (``--set KEY=VALUE``); every one is our choice (see the README)."""

    shard_size: int = 1000  # documents per shard of the source
    max_text_chars: int = 6000  # document text shown to the classifier and retriever
    max_context_chars: int = 2000  # context shown with a pair
    max_images: int = 8  # images of a document shown to the retriever
    max_pairs: int = 2  # pairs the retriever may take from one document
    min_score: int = 4  # the filter keeps a pair scored at least this (1-5)
    n_rewrites: int = 3
    image_detail: str = "auto"
    max_tokens: int = 1024
    tries: int = 3  # answers read before a row is dropped as malformed
    temperature: float = 0.0
    rewriter_temperature: float = 1.0  # diverse rewrites


def prompt(name: str) -> str:
    """The text of ``prompts/<name>.txt``."""
    return resources.files("paperzoo.vqva").joinpath(f"prompts/{name}.txt").read_text()


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model answer (code fences and text around it allowed)."""
    cleaned = re.sub(r"```(?:json)?", "", text).strip()
    try:
        value = json.loads(cleaned)
    except json.JSONDecodeError:
        start, end = cleaned.find("{"), cleaned.rfind("}")
        if start < 0 or end <= start:
            raise ValueError(f"no JSON object in {text[:200]!r}") from None
        value = json.loads(cleaned[start : end + 1])
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------------------------
# Documents


def _doc_text(row: dict[str, Any], limit: int) -> str:
    """The document's text in order, images marked ``[image k]``, cut at ``limit`` characters."""
    parts, k = [], 0
    for text, flag in zip(row["interleaved"], row["flag"]):
        if flag == "image":
            parts.append(f"[image {k}]")
            k += 1
        elif text:
            parts.append(text)
    return "\n".join(parts)[:limit]


def _source_files(sources: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted([*path.glob("*.parquet"), *path.glob("*.jsonl")])
            if not found:
                raise FileNotFoundError(f"{path}: no *.parquet or *.jsonl documents")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise ValueError(f"source files must have distinct names (they name the shards): {stems}")
    return files


def load_documents(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Interleaved documents of one file, in the layout of the official training code's web
    data: ``interleaved`` (one entry per position: text, or anything at an image position),
    ``flag`` (``"text"`` / ``"image"`` per position) and ``image`` (one encoded image per image
    position; in JSONL, paths relative to the file), plus ``id`` (default: ``<stem>:<row>``)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON ({exc})") from None
        for row in rows:
            row["image"] = [
                (path.parent / p).read_bytes() if isinstance(p, str) else p
                for p in row.get("image") or []
            ]
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        raise ValueError(f"{path}: documents are .jsonl or .parquet")
    docs = []
    for n, row in enumerate(rows):
        where = f"{path.name} row {n}"
        interleaved, flags, images = row.get("interleaved"), row.get("flag"), row.get("image")
        if not isinstance(interleaved, list) or not isinstance(flags, list):
            raise ValueError(f"{where}: needs lists 'interleaved' and 'flag'")
        if len(interleaved) != len(flags) or set(flags) - {"text", "image"}:
            raise ValueError(f"{where}: 'flag' must give 'text' or 'image' per 'interleaved' entry")
        if flags.count("image") != len(images or []):
            raise ValueError(
                f"{where}: {flags.count('image')} image positions but {len(images or [])} images"
            )
        docs.append({
            "doc_id": str(row.get("id", f"{path.stem}:{n}")),
            "interleaved": [t if isinstance(t, str) else None for t in interleaved],
            "flag": list(flags),
            "image": list(images or []),
        })  # fmt: skip
    return docs


# ---------------------------------------------------------------------------------------------
# The steps


@dataclass(frozen=True)
class Step:
    """One model call per row. ``content(row, cfg)``: the user message; ``parse(text, row,
    cfg)``: the answer (raise ``ValueError`` for an unreadable one: it is asked again);
    ``expand(row, answer, cfg)``: the rows it yields (none: dropped) and why, deterministic, so
    that only ``answer`` needs recording; ``precheck(row, cfg)``: a reason to drop the row with
    no call, or None."""

    name: str
    content: Callable[[dict[str, Any], PipelineConfig], list[dict[str, Any]]]
    parse: Callable[[str, dict[str, Any], PipelineConfig], dict[str, Any]]
    expand: Callable[[dict[str, Any], dict[str, Any], PipelineConfig], tuple[list[dict], str]]
    precheck: Callable[[dict[str, Any], PipelineConfig], str | None] | None = None

    def system(self, cfg: PipelineConfig) -> str:
        return Template(prompt(self.name)).substitute(
            max_pairs=cfg.max_pairs, n_rewrites=cfg.n_rewrites, min_score=cfg.min_score
        )

    def temperature(self, cfg: PipelineConfig) -> float:
        return cfg.rewriter_temperature if self.name == "rewriter" else cfg.temperature


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _str_field(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string {key!r}, got {value!r:.80}")
    return value.strip()


def _int_field(answer: dict[str, Any], key: str) -> int:
    value = answer.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"expected an integer {key!r}, got {value!r:.80}")
    return int(value)


# classify: a document's text -> its category, or none.
def _classify_precheck(row: dict[str, Any], cfg: PipelineConfig) -> str | None:
    if len(row["image"]) < 2:
        return f"{len(row['image'])} image(s): a question and an answer image need two"
    if not any(t and t.strip() for t, f in zip(row["interleaved"], row["flag"]) if f == "text"):
        return "no text"
    return None


def _classify_content(row: dict[str, Any], cfg: PipelineConfig) -> list[dict[str, Any]]:
    return [_text("Document:\n" + _doc_text(row, cfg.max_text_chars))]


def _classify_parse(text: str, row: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    answer = parse_json_object(text)
    category = _str_field(answer, "category")
    if category not in (*CATEGORIES, "none"):
        raise ValueError(f"category {category!r} is not one of {[*CATEGORIES, 'none']}")
    return {"category": category, "reason": str(answer.get("reason", ""))}


def _classify_expand(row, answer, cfg):
    if answer["category"] == "none":
        return [], f"category none: {answer['reason']}"
    return [{**row, "category": CATEGORIES[answer["category"]]}], ""


# retriever: a document, text and images -> (question image, answer image) pairs.
def _retriever_content(row: dict[str, Any], cfg: PipelineConfig) -> list[dict[str, Any]]:
    parts, k, chars = [], 0, 0
    for text, flag in zip(row["interleaved"], row["flag"]):
        if flag == "image":
            if k < cfg.max_images:
                parts += [_text(f"[image {k}]"), image_part(row["image"][k], cfg.image_detail)]
            k += 1
        elif text and chars < cfg.max_text_chars:
            parts.append(_text(text[: cfg.max_text_chars - chars]))
            chars += len(text)
    return parts


def _retriever_parse(text: str, row: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    answer = parse_json_object(text)
    pairs = answer.get("pairs")
    if not isinstance(pairs, list):
        raise ValueError(f"expected a list 'pairs', got {pairs!r:.80}")
    shown = min(len(row["image"]), cfg.max_images)
    out = []
    for pair in pairs[: cfg.max_pairs]:
        if not isinstance(pair, dict):
            raise ValueError(f"a pair must be an object, got {pair!r:.80}")
        q, a = _int_field(pair, "question_image"), _int_field(pair, "answer_image")
        if not (0 <= q < shown and 0 <= a < shown) or q == a:
            raise ValueError(f"pair ({q}, {a}): two different images among 0..{shown - 1}")
        out.append({"question_image": q, "answer_image": a,
                    "relation": _str_field(pair, "relation")})  # fmt: skip
    return {"pairs": out}


def _retriever_expand(row, answer, cfg):
    context = _doc_text(row, cfg.max_context_chars)
    samples = [
        {
            "id": f"{row['doc_id']}#{k}",
            "doc_id": row["doc_id"],
            "category": row["category"],
            "context": context,
            "relation": pair["relation"],
            "image_indices": [pair["question_image"], pair["answer_image"]],
            "qa_image": [row["image"][pair["question_image"]], row["image"][pair["answer_image"]]],
        }
        for k, pair in enumerate(answer["pairs"])
    ]
    return samples, "" if samples else "no pair found"


def _pair_content(row: dict[str, Any], cfg: PipelineConfig) -> list[dict[str, Any]]:
    category = {v: k for k, v in CATEGORIES.items()}[row["category"]]
    return [
        _text(f"Category: {category}\nContext:\n{row['context']}\nRelation: {row['relation']}"),
        _text("[question image]"),
        image_part(row["qa_image"][0], cfg.image_detail),
        _text("[answer image]"),
        image_part(row["qa_image"][1], cfg.image_detail),
    ]


# filter: a pair -> a 1-5 score.
def _filter_parse(text: str, row: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    answer = parse_json_object(text)
    score = _int_field(answer, "score")
    if not 1 <= score <= 5:
        raise ValueError(f"score {score} is not in 1..5")
    return {"score": score, "reason": str(answer.get("reason", ""))}


def _filter_expand(row, answer, cfg):
    if answer["score"] < cfg.min_score:
        return [], f"score {answer['score']} < {cfg.min_score}: {answer['reason']}"
    return [{**row, "filter_score": answer["score"], "filter_reason": answer["reason"]}], ""


# instruction generator: a pair -> the question and the answer's description.
def _instruction_parse(text: str, row: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    answer = parse_json_object(text)
    return {"q": _str_field(answer, "question"), "a": _str_field(answer, "answer")}


def _instruction_expand(row, answer, cfg):
    qas = json.dumps({"q": answer["q"], "a": answer["a"]}, ensure_ascii=False)
    return [{**row, "qas": qas}], ""


# rewriter: the question -> rewrites of it.
def _question(row: dict[str, Any]) -> str:
    return json.loads(row["qas"])["q"]


def _rewriter_content(row: dict[str, Any], cfg: PipelineConfig) -> list[dict[str, Any]]:
    return [_text(f"Question:\n{_question(row)}")]


def _rewriter_parse(text: str, row: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    rewrites = parse_json_object(text).get("rewrites")
    if not isinstance(rewrites, list) or not rewrites:
        raise ValueError(f"expected a non-empty list 'rewrites', got {rewrites!r:.80}")
    if not all(isinstance(r, str) and r.strip() for r in rewrites):
        raise ValueError("every rewrite must be a non-empty string")
    return {"rewrites": [r.strip() for r in rewrites[: cfg.n_rewrites]]}


def _rewriter_expand(row, answer, cfg):
    return [{**row, "rewrite_qas": answer["rewrites"]}], ""


# reasoner: question image, question and answer -> the reasoning that leads to the answer.
def _reasoner_content(row: dict[str, Any], cfg: PipelineConfig) -> list[dict[str, Any]]:
    qa = json.loads(row["qas"])
    return [
        _text("[question image]"),
        image_part(row["qa_image"][0], cfg.image_detail),
        _text(f"Question: {qa['q']}"),
        _text("[answer image]"),
        image_part(row["qa_image"][1], cfg.image_detail),
        _text(f"Answer: {qa['a']}"),
    ]


def _reasoner_parse(text: str, row: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    return {"think": _str_field(parse_json_object(text), "think")}


def _reasoner_expand(row, answer, cfg):
    return [{**row, "think": answer["think"]}], ""


STEPS: tuple[Step, ...] = (
    Step("classify", _classify_content, _classify_parse, _classify_expand, _classify_precheck),
    Step("retriever", _retriever_content, _retriever_parse, _retriever_expand),
    Step("filter", _pair_content, _filter_parse, _filter_expand),
    Step("instruction", _pair_content, _instruction_parse, _instruction_expand),
    Step("rewriter", _rewriter_content, _rewriter_parse, _rewriter_expand),
    Step("reasoner", _reasoner_content, _reasoner_parse, _reasoner_expand),
)


def _row_id(row: dict[str, Any]) -> str:
    return str(row.get("id", row.get("doc_id")))


# ---------------------------------------------------------------------------------------------
# Shards


def _schema(step: str) -> Any:
    import pyarrow as pa

    doc = [
        ("doc_id", pa.string()), ("interleaved", pa.list_(pa.string())),
        ("flag", pa.list_(pa.string())), ("image", pa.list_(pa.binary())),
        ("category", pa.string()),
    ]  # fmt: skip
    sample = [
        ("id", pa.string()), ("doc_id", pa.string()), ("category", pa.string()),
        ("context", pa.string()), ("relation", pa.string()),
        ("image_indices", pa.list_(pa.int32())), ("qa_image", pa.list_(pa.binary())),
    ]  # fmt: skip
    extra = {
        "filter": [("filter_score", pa.int32()), ("filter_reason", pa.string())],
        "instruction": [("qas", pa.string())],
        "rewriter": [("rewrite_qas", pa.list_(pa.string()))],
        "reasoner": [("think", pa.string())],
    }
    if step == "classify":
        return pa.schema(doc)
    order = [s.name for s in STEPS]
    fields = list(sample)
    for name in order[order.index("filter") : order.index(step) + 1]:
        fields += extra[name]
    return pa.schema(fields)


def _write_parquet(rows: list[dict[str, Any]], schema: Any, path: Path) -> None:
    """Write ``rows`` to ``path`` atomically (a temporary file, fsync, rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


class _ShardLedger:
    """``<shard>.jsonl``: one decided row per line, appended and flushed as it is decided; a
    last line cut short by a kill is dropped on reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.decided: dict[str, dict[str, Any]] = {}
        if path.exists():
            good = 0
            with open(path, "rb") as fh:
                for line in fh:
                    if not line.endswith(b"\n"):
                        break
                    entry = json.loads(line)
                    self.decided[entry["id"]] = entry
                    good += len(line)
            if good != path.stat().st_size:
                with open(path, "r+b") as fh:
                    fh.truncate(good)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def add(self, entry: dict[str, Any]) -> None:
        self.decided[entry["id"]] = entry
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


@dataclass
class StepReport:
    """What one step did in this run."""

    step: str
    shards: int = 0
    shards_done_before: int = 0
    rows_in: int = 0
    rows_out: int = 0
    asked: int = 0  # rows sent to the model in this run
    skipped: int = 0  # dropped by a rule, no call
    dropped: int = 0  # dropped by the model's answer
    malformed: int = 0
    failed: int = 0  # undecided: the request kept failing (rerun to ask again)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.failed == 0


async def run_step(
    step: Step,
    shards: dict[str, list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]],
    out_dir: str | os.PathLike[str],
    client: Any,
    cfg: PipelineConfig,
) -> StepReport:
    """Run ``step`` over ``shards`` (name -> rows, or a function that loads them) into
    ``out_dir/<step.name>/`` (see the module docstring); finished shards are skipped unread."""
    from paperzoo.eval import ChatRequest, MalformedOutput, RequestFailed, ask_parsed

    folder = Path(out_dir) / step.name
    folder.mkdir(parents=True, exist_ok=True)
    report = StepReport(step.name, shards=len(shards))
    system = step.system(cfg)
    for name, rows in shards.items():
        final = folder / f"{name}.parquet"
        if final.exists():
            report.shards_done_before += 1
            continue
        rows = rows() if callable(rows) else rows
        report.rows_in += len(rows)
        ledger = _ShardLedger(folder / f"{name}.jsonl")
        failed = 0

        async def decide(row: dict[str, Any], ledger: _ShardLedger) -> None:
            nonlocal failed
            rid = _row_id(row)
            reason = step.precheck(row, cfg) if step.precheck else None
            if reason is not None:
                ledger.add({"id": rid, "skipped": reason})
                report.skipped += 1
                return
            messages = [{"role": "system", "content": system},
                        {"role": "user", "content": step.content(row, cfg)}]  # fmt: skip
            request = ChatRequest.of(
                messages, temperature=step.temperature(cfg), max_tokens=cfg.max_tokens
            )
            report.asked += 1
            try:
                answer, _ = await ask_parsed(
                    client, request, lambda text: step.parse(text, row, cfg), tries=cfg.tries
                )
            except MalformedOutput as exc:
                ledger.add({"id": rid, "malformed": str(exc)})
                report.malformed += 1
            except RequestFailed as exc:
                failed += 1
                report.errors.append(f"{step.name} {rid}: {exc}")
            else:
                ledger.add({"id": rid, "answer": answer})

        try:
            todo = [row for row in rows if _row_id(row) not in ledger.decided]
            await asyncio.gather(*(decide(row, ledger) for row in todo))
        finally:
            ledger.close()
        if failed:
            report.failed += failed
            continue
        out_rows: list[dict[str, Any]] = []
        for row in rows:
            entry = ledger.decided[_row_id(row)]
            if "answer" in entry:
                produced, _ = step.expand(row, entry["answer"], cfg)
                report.dropped += not produced
                out_rows += produced
        _write_parquet(out_rows, _schema(step.name), final)
        report.rows_out += len(out_rows)
    return report


def _source_shards(
    sources: Sequence[str | os.PathLike[str]], shard_size: int
) -> dict[str, Callable[[], list[dict[str, Any]]]]:
    """Shard name -> loader of its documents: ``<file stem>-<k:05d>``, ``shard_size`` each."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    shards: dict[str, Callable[[], list[dict[str, Any]]]] = {}
    for file in _source_files(sources):
        count = _count_rows(file)
        for k in range(max(1, -(-count // shard_size))):
            shards[f"{file.stem}-{k:05d}"] = lambda f=file, k=k: load_documents(f)[
                k * shard_size : (k + 1) * shard_size
            ]
    return shards


def _count_rows(file: Path) -> int:
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(file).metadata.num_rows
    return sum(1 for line in file.read_text(encoding="utf-8").splitlines() if line.strip())


def _settings(sources: Sequence[Any], client: Any, cfg: PipelineConfig) -> dict[str, Any]:
    prompts = {s.name: hashlib.sha256(s.system(cfg).encode()).hexdigest()[:16] for s in STEPS}
    return {
        "sources": [str(Path(s).resolve()) for s in sources],
        "model": getattr(client, "model", None),
        "base_url": getattr(client, "base_url", None),
        "config": dataclasses.asdict(cfg),
        "prompts": prompts,
    }


async def run_pipeline(
    sources: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    client: Any,
    cfg: PipelineConfig | None = None,
    steps: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[StepReport]:
    """Run the steps in order (all, or ``steps``) and stop after the first step that is not
    complete. ``OUT/pipeline.json`` records the settings; a rerun with other ones is refused."""
    cfg = cfg or PipelineConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(sources, client, cfg)
    record = out / "pipeline.json"
    if record.exists():
        before = json.loads(record.read_text())
        # The endpoint may change (another host serving the same model); nothing else may.
        changed = sorted(k for k in settings if k != "base_url" and before.get(k) != settings[k])
        if changed:
            raise PipelineError(
                f"{out} holds a run with other {', '.join(changed)}: rerun it with the same "
                "settings to resume, or use a new --out"
            )
    else:
        tmp = out / "pipeline.json.tmp"
        tmp.write_text(json.dumps(settings, indent=1))
        os.replace(tmp, record)
    names = [s.name for s in STEPS]
    chosen = list(steps) if steps else names
    unknown = [s for s in chosen if s not in names]
    if unknown:
        raise PipelineError(f"unknown step(s) {unknown}; the steps are {names}")
    source = _source_shards(sources, cfg.shard_size)
    reports = []
    for k, step in enumerate(STEPS):
        if step.name not in chosen:
            continue
        if k == 0:
            shards: dict[str, Any] = source
        else:
            previous = out / STEPS[k - 1].name
            missing = [n for n in source if not (previous / f"{n}.parquet").exists()]
            if missing:
                raise PipelineError(
                    f"step {step.name} needs {STEPS[k - 1].name} to be complete; its shards "
                    f"{missing[:5]} are missing: run that step first"
                )
            shards = {n: (lambda p=previous / f"{n}.parquet": _read_parquet(p)) for n in source}
        report = await run_step(step, shards, out, client, cfg)
        reports.append(report)
        if log is not None:
            log(
                f"[vqva] {step.name}: {report.rows_in} rows in, {report.rows_out} out, "
                f"{report.asked} asked, {report.skipped} skipped by rule, {report.dropped} "
                f"dropped, {report.malformed} malformed, {report.failed} failed; "
                f"{report.shards_done_before}/{report.shards} shards were done before"
            )
        if not report.complete:
            break
    return reports


# ---------------------------------------------------------------------------------------------
# The command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paperzoo vqva-pipeline",
        description="VQ-VA World data pipeline: classify, retriever, filter, instruction, "
        "rewriter, reasoner; resumable parquet shards",
    )
    p.add_argument("--source", nargs="+", required=True,
                   help="interleaved documents: .jsonl / .parquet files or folders")  # fmt: skip
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"))
    p.add_argument("--model", default=os.environ.get("OPENAI_MODEL"))
    p.add_argument("--api-key", default=None, help="default: OPENAI_API_KEY")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rpm", type=float, default=None)
    p.add_argument("--max-attempts", type=int, default=6)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--cache", type=Path, default=None,
                   help="response cache (default: the paperzoo eval cache)")  # fmt: skip
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--steps", default=None, help="comma-separated subset, in order")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a PipelineConfig option, e.g. --set shard_size=500")  # fmt: skip
    return p


async def _main(args: argparse.Namespace) -> list[StepReport]:
    from paperzoo.core.config import apply_overrides
    from paperzoo.eval import ChatClient, ResponseCache, RetryPolicy
    from paperzoo.eval.cli import default_cache_path

    cfg = apply_overrides(PipelineConfig(), args.set)
    cache = None if args.no_cache else ResponseCache(args.cache or default_cache_path())
    client = ChatClient(
        model=args.model, base_url=args.base_url, api_key=args.api_key,
        concurrency=args.concurrency, requests_per_minute=args.rpm, cache=cache,
        retry=RetryPolicy(max_attempts=args.max_attempts, timeout=args.timeout),
    )  # fmt: skip
    try:
        steps = args.steps.split(",") if args.steps else None
        return await run_pipeline(args.source, args.out, client, cfg, steps,
                                  log=lambda m: print(m, file=sys.stderr, flush=True))  # fmt: skip
    finally:
        await client.close()
        if cache is not None:
            cache.close()


def main(argv: list[str] | None = None) -> int:
    """``paperzoo vqva-pipeline``: 0 when every step is complete, 1 when rows failed (rerun the
    same command to ask them again), 2 on an error."""
    args = build_parser().parse_args(argv)
    try:
        reports = asyncio.run(_main(args))
    except (PipelineError, ValueError, FileNotFoundError) as exc:
        print(f"paperzoo vqva-pipeline: error: {exc}", file=sys.stderr)
        return 2
    incomplete = [r for r in reports if not r.complete]
    for report in incomplete:
        for error in report.errors[:5]:
            print(f"  {error}", file=sys.stderr)
        print(f"{report.step}: {report.failed} rows failed: rerun the same command to resume",
              file=sys.stderr)  # fmt: skip
    if not incomplete:
        print(f"done: {args.out / STEPS[-1].name}/*.parquet")
    return 1 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())

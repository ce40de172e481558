"""DeCapBench (DCScore) and FeedQuill as ``paperzoo eval`` benchmarks.

    paperzoo eval decapbench --data DIR --predictions captions.jsonl --out OUT \\
        --judge-base-url URL --judge-model gpt-4o-2024-05-13
    paperzoo eval feedquill --data IMAGES --out OUT --model-base-url URL --model M \\
        --judge-base-url URL --judge-model J --set samples=4

The judge requests are the official script's: the system prompt "You are a helpful
assistant.", max tokens 2000; extraction as text at temperature 1 (n=1), matching as text at
temperature 1 (n=3), verification with the image (JPEG, detail high) at temperature 0.3 (n=3).
The official script retries an image's whole evaluation up to 5 times when any answer cannot
be read; here the answer that cannot be read is asked again (up to ``tries`` times, each its
own cache entry) and the image fails after that, counted in the summary.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from paperzoo.decapbench import dcscore
from paperzoo.decapbench.dcscore import Unit
from paperzoo.eval import Benchmark, ChatClient, ChatRequest, ask_parsed, ask_parsed_samples
from paperzoo.eval.client import image_part
from paperzoo.eval.runner import read_predictions

__all__ = ["DeCapBench", "FeedQuill", "load_decapbench", "prompt"]

SYSTEM = "You are a helpful assistant."
ORACLE_FILE = "human_annotated_oracle_facts.jsonl"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@cache
def prompt(name: str) -> str:
    """A prompt template from ``paperzoo/decapbench/prompts/NAME.txt``."""
    return resources.files("paperzoo.decapbench").joinpath(f"prompts/{name}.txt").read_text()


def _jpeg_part(path: str, detail: str) -> dict[str, Any]:
    """The image as the official script sends it: RGB, re-encoded as JPEG, base64."""
    return image_part(path, detail, jpeg=True)


def _messages(text: str, image: str | None = None, detail: str = "high") -> list[dict]:
    content: Any = (
        text if image is None else [_jpeg_part(image, detail), {"type": "text", "text": text}]
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def load_decapbench(data: Path) -> list[dict[str, Any]]:
    """The official layout: ``DIR/human_annotated_oracle_facts.jsonl`` (rows ``image_name``,
    ``oracle_caption``, ``oracle_facts``) and the images in ``DIR/images/`` (or next to the
    file). ``data`` may also be the JSONL itself."""
    data = Path(data)
    path = data / ORACLE_FILE if data.is_dir() else data
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no DeCapBench oracle facts ({ORACLE_FILE})")
    image_dir = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    items, missing = [], []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                name, caption, facts = row["image_name"], row["oracle_caption"], row["oracle_facts"]
                if not (
                    isinstance(facts, list) and facts and all(isinstance(f, str) for f in facts)
                ):
                    raise TypeError("oracle_facts must be a non-empty list of strings")
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}:{n}: expected {{image_name, oracle_caption, oracle_facts: [str]}}"
                    f" ({type(exc).__name__}: {exc})"
                ) from None
            image = image_dir / name
            if not image.is_file():
                missing.append(name)
            items.append(
                {
                    "id": name,
                    "image": str(image),
                    "oracle_caption": caption,
                    "oracle_facts": list(facts),
                }
            )
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(items)} images are not in {image_dir}: {missing[:5]}"
        )
    return items


def read_captions(path: Path) -> dict[str, list[str]]:
    """Captions to score: the official input (``{image_path, caption, ...}`` per line) or
    paperzoo's (``{id, prediction}``)."""
    with open(path, encoding="utf-8") as fh:
        first = next((line for line in fh if line.strip()), "")
    if '"image_path"' not in first:
        return read_predictions(path)
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                    out[Path(row["image_path"]).name] = [str(row["caption"])]
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{path}:{n}: expected {{image_path, caption}} ({exc})"
                    ) from None
    return out


@dataclasses.dataclass
class _UnitJudge:
    """The three judged steps the two benchmarks share."""

    tries: int = 3  # answers asked per step before the item fails
    extract_temperature: float = 1.0
    match_temperature: float = 1.0
    match_samples: int = 3
    verify_temperature: float = 0.3
    verify_samples: int = 3
    max_tokens: int = 2000

    async def extract(self, judge: ChatClient, caption: str) -> list[Unit]:
        request = ChatRequest.of(
            _messages(prompt("extract").format(caption=caption)),
            temperature=self.extract_temperature,
            max_tokens=self.max_tokens,
        )
        units, _ = await ask_parsed(judge, request, dcscore.parse_units, self.tries)
        return units

    async def match(
        self, judge: ChatClient, units: list[Unit], oracle: list[str]
    ) -> list[list[int | None]]:
        text = prompt("match").format(
            predicted_atomic_facts=dcscore.units_json([u.wire() for u in units]),
            oracle_atomic_facts=dcscore.units_json(
                [{"id": i, "fact": f} for i, f in enumerate(oracle)]
            ),
        )
        request = ChatRequest.of(
            _messages(text),
            n=self.match_samples,
            temperature=self.match_temperature,
            max_tokens=self.max_tokens,
        )
        return await ask_parsed_samples(
            judge, request, lambda t: dcscore.parse_matching(t, units, len(oracle)), self.tries
        )

    async def verify(
        self, judge: ChatClient, units: list[Unit], image: str, reference: str | None
    ) -> list[list[int]]:
        facts = dcscore.units_json([u.wire() for u in units])
        text = (
            prompt("verify").format(reference_caption=reference, atomic_facts=facts)
            if reference is not None
            else prompt("verify_image_only").format(atomic_facts=facts)
        )
        request = ChatRequest.of(
            _messages(text, image, "high"),
            n=self.verify_samples,
            temperature=self.verify_temperature,
            max_tokens=self.max_tokens,
        )
        return await ask_parsed_samples(
            judge, request, lambda t: dcscore.parse_verification(t, units), self.tries
        )


@dataclasses.dataclass
class DeCapBench(_UnitJudge, Benchmark):
    """DCScore over the official DeCapBench data (IIW-400 images and human oracle facts).

    Options (``--set``): ``caption_prompt`` (what the model under test is asked when captions
    are generated here), ``tries``, the judge's temperatures and sample counts."""

    name = "decapbench"
    needs_judge = True
    caption_prompt: str = "Please describe the image in detail."
    caption_max_tokens: int = 1024

    def load(self, data: Path) -> list[dict[str, Any]]:
        return load_decapbench(data)

    def read_predictions(self, path: Path) -> dict[str, list[str]]:
        return read_captions(path)

    def request(self, item: dict[str, Any]) -> ChatRequest:
        content = [_jpeg_part(item["image"], "high"), {"type": "text", "text": self.caption_prompt}]
        return ChatRequest.of(
            [{"role": "user", "content": content}], max_tokens=self.caption_max_tokens
        )

    async def score(
        self, item: dict[str, Any], predictions: Sequence[str], judge: ChatClient | None
    ) -> dict[str, Any]:
        assert judge is not None
        units = await self.extract(judge, predictions[0])
        if not units:
            return {"score": 0.0, "units": 0, "note": "no units in the caption"}
        matchings, verifications = await asyncio.gather(
            self.match(judge, units, item["oracle_facts"]),
            self.verify(judge, units, item["image"], item["oracle_caption"]),
        )
        scores = dcscore.image_scores(units, verifications, matchings, len(item["oracle_facts"]))
        return {
            "score": scores.pop("dcscore"),
            **scores,
            "units": len(units),
            "relevant_units": sum(u.relevance for u in units),
            "unit_facts": [dataclasses.asdict(u) for u in units],
            "verifications": verifications,
            "matchings": matchings,
        }

    def aggregate(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        def mean(key):
            return (
                sum(r["result"].get(key, 0.0) for r in records) / len(records)
                if records
                else float("nan")
            )

        return {
            "overall": mean("score"),
            "groups": {
                "precision": 100 * mean("precision"),
                "recall": 100 * mean("recall"),
                "f1": 100 * mean("f1"),
                "f1_relevant": 100 * mean("f1_relevant"),
            },
        }


def load_images(data: Path) -> list[dict[str, Any]]:
    """FeedQuill's input: a folder of images, or DeCapBench's layout (whose oracle captions
    then serve as the verifier's reference)."""
    data = Path(data)
    if (data / ORACLE_FILE).is_file() or data.suffix == ".jsonl":
        return [
            {"id": it["id"], "image": it["image"], "reference": it["oracle_caption"]}
            for it in load_decapbench(data)
        ]
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: not a folder of images")
    images = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"{data}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return [{"id": str(p.relative_to(data)), "image": str(p), "reference": None} for p in images]


@dataclasses.dataclass
class FeedQuill(_UnitJudge, Benchmark):
    """FeedQuill's fine-grained feedback: sample ``samples`` captions per image from the
    model under test, extract their units, verify each unit against the image (majority over
    the verifier's samples), and pair the captions: preferred is the one with fewer
    hallucinated units, then the one with more units (the rule the issue states; the paper's
    training code is not released). Pairs go to ``OUT/dpo`` in TRL's DPO format.

    ``score`` per image is the mean unit precision of its captions (x 100)."""

    name = "feedquill"
    needs_judge = True
    samples: int = 4
    caption_prompt: str = "Please describe the image in detail."
    caption_temperature: float = 0.7
    caption_max_tokens: int = 1024
    pairs_per_image: int = 0  # 0: every strictly ordered pair

    def load(self, data: Path) -> list[dict[str, Any]]:
        return load_images(data)

    def request(self, item: dict[str, Any]) -> ChatRequest:
        content = [_jpeg_part(item["image"], "high"), {"type": "text", "text": self.caption_prompt}]
        return ChatRequest.of(
            [{"role": "user", "content": content}],
            temperature=self.caption_temperature,
            max_tokens=self.caption_max_tokens,
        )

    async def _feedback(
        self, judge: ChatClient, item: dict[str, Any], caption: str
    ) -> dict[str, Any]:
        units = await self.extract(judge, caption)
        if not units:
            return {"caption": caption, "units": 0, "hallucinated": 0, "verified": []}
        votes = await self.verify(judge, units, item["image"], item["reference"])
        verified = [int(2 * sum(v[i] for v in votes) > len(votes)) for i in range(len(units))]
        return {
            "caption": caption,
            "units": len(units),
            "hallucinated": verified.count(0),
            "verified": verified,
            "facts": [u.fact for u in units],
        }

    async def score(
        self, item: dict[str, Any], predictions: Sequence[str], judge: ChatClient | None
    ) -> dict[str, Any]:
        assert judge is not None
        captions = await asyncio.gather(*(self._feedback(judge, item, c) for c in predictions))
        precisions = [1 - c["hallucinated"] / c["units"] for c in captions if c["units"]]
        score = 100 * sum(precisions) / len(precisions) if precisions else 0.0
        return {"score": score, "captions": list(captions)}

    def finish(
        self, out: Path, items: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        from paperzoo.decapbench.dpo import write_dpo_dataset

        by_id = {str(it["id"]): it for it in items}
        pairs = [
            p
            for rec in records
            for p in preference_pairs(
                by_id[rec["id"]]["image"],
                self.caption_prompt,
                rec["result"]["captions"],
                self.pairs_per_image,
            )
        ]
        if not pairs:
            return {"dpo_pairs": 0}
        return {"dpo_pairs": len(pairs), "dpo_dataset": str(write_dpo_dataset(pairs, out / "dpo"))}


def preference_pairs(
    image: str, caption_prompt: str, captions: Sequence[dict[str, Any]], limit: int = 0
) -> list[Any]:
    """Every pair of distinct captions where one is preferred: fewer hallucinated units,
    then more units. Captions without units make no pair, ties make none, and a caption
    sampled twice counts once. ``limit`` > 0 keeps the pairs with the largest gap first."""
    from paperzoo.decapbench.dpo import PreferencePair

    rank = lambda c: (-c["hallucinated"], c["units"])  # noqa: E731 (higher is preferred)
    usable = list({c["caption"]: c for c in captions if c["units"]}.values())
    pairs = []
    for i, a in enumerate(usable):
        for b in usable[i + 1 :]:
            if rank(a) == rank(b):
                continue
            chosen, rejected = (a, b) if rank(a) > rank(b) else (b, a)
            gap = (
                rejected["hallucinated"] - chosen["hallucinated"],
                chosen["units"] - rejected["units"],
            )
            pairs.append(
                (
                    gap,
                    PreferencePair(
                        image,
                        caption_prompt,
                        chosen["caption"],
                        rejected["caption"],
                        {
                            "chosen": {k: chosen[k] for k in ("units", "hallucinated")},
                            "rejected": {k: rejected[k] for k in ("units", "hallucinated")},
                        },
                    ),
                )
            )
    if limit > 0:
        pairs = sorted(pairs, key=lambda gp: gp[0], reverse=True)[:limit]
    return [p for _, p in pairs]

"""The scripted judge: answers DeCapBench's three prompts from ``tiny/scripted_judge.json``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from paperzoo.eval.testing import Reply, prompt_text

TINY = Path(str(resources.files("paperzoo.decapbench").joinpath("data/tiny")))


def fenced(entries) -> str:
    return "Here you go:\n```json\n" + json.dumps(entries, indent=1) + "\n```"


def kind(text: str) -> str:
    if "extracting atomic facts" in text:
        return "extract"
    if "matching two set of atomic facts" in text:
        return "match"
    if "verifying the correctness of a set of atomic facts" in text:
        return "verify"
    return "caption"


class DCScoreJudge:
    """Per image: the scripted units, matchings and verifications (one choice per sample)."""

    def __init__(self, root: Path = TINY) -> None:
        self.script = json.loads((root / "scripted_judge.json").read_text())
        self.captions = {
            json.loads(line)["image_path"]: json.loads(line)["caption"]
            for line in (root / "captions.jsonl").read_text().splitlines()
        }

    def image_of(self, text: str, what: str) -> str:
        if what == "extract":
            caption = text.rsplit("### Caption\n", 1)[1].split("\n### Atomic Facts")[0]
            return next(n for n, c in self.captions.items() if c == caption)
        return next(
            n
            for n, s in self.script.items()
            if "units" in s and json.dumps({"fact": s["units"][0]["fact"]})[:-1] in text
        )

    def __call__(self, body, n):
        text = prompt_text(body)
        what = kind(text)
        name = self.image_of(text, what)
        s = self.script[name]
        if what == "extract":
            return "I cannot list them." if s.get("malformed") else fenced(s["units"])
        units = [{k: v for k, v in u.items() if k != "relevance"} for u in s["units"]]
        if what == "match":
            return Reply(content=[
                fenced([dict(u, matched_oracle_id="None" if m is None else m)
                        for u, m in zip(units, ms)])
                for ms in s["matchings"]
            ])  # fmt: skip
        return Reply(content=[
            fenced([dict(u, verification=v) for u, v in zip(units, vs)]) for vs in s["verifications"]
        ])  # fmt: skip


@pytest.fixture
def tiny() -> Path:
    return TINY

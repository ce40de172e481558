"""FeedQuill preference pairs as a TRL DPO dataset (conversational, with images).

The layout is the one ``trl.DPOTrainer`` reads for vision-language models: per row
``images`` (a list of images, here one), ``prompt`` (the user turn: an image placeholder and
the text), ``chosen`` and ``rejected`` (one assistant turn each). It is written with
``datasets`` (``save_to_disk``), images as ``Image`` features holding the files' bytes, so
the folder is self-contained: ``datasets.load_from_disk(path)`` gives the training set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PreferencePair", "write_dpo_dataset"]


@dataclass(frozen=True)
class PreferencePair:
    """One pair: the image, the captioning prompt, the preferred and the other caption.
    ``info`` (kept in ``pairs.jsonl`` next to the dataset, not in it) says why."""

    image: str
    prompt: str
    chosen: str
    rejected: str
    info: dict[str, Any] = field(default_factory=dict)


def _row(pair: PreferencePair) -> dict[str, Any]:
    return {
        "images": [{"bytes": Path(pair.image).read_bytes(), "path": None}],
        "prompt": [
            {
                "role": "user",
                "content": [{"type": "image", "text": None}, {"type": "text", "text": pair.prompt}],
            }
        ],
        "chosen": [{"role": "assistant", "content": [{"type": "text", "text": pair.chosen}]}],
        "rejected": [{"role": "assistant", "content": [{"type": "text", "text": pair.rejected}]}],
    }


def write_dpo_dataset(pairs: Iterable[PreferencePair], dest: str | os.PathLike[str]) -> Path:
    """Write ``pairs`` to ``dest`` (a ``datasets`` folder) and ``dest/pairs.jsonl`` (the
    pairs with their ``info``). Returns ``dest``. Needs the ``feedquill`` extra."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - the extra names the fix
        raise ImportError(
            "write_dpo_dataset needs: pip install 'paperzoo-decapbench[feedquill]'"
        ) from exc

    pairs = list(pairs)
    if not pairs:
        raise ValueError("no preference pairs to write (every caption tied with the others?)")
    text = datasets.Value("string")
    turn = datasets.List({"role": text, "content": datasets.List({"type": text, "text": text})})
    features = datasets.Features(
        {
            "images": datasets.List(datasets.Image()),
            "prompt": turn,
            "chosen": turn,
            "rejected": turn,
        }
    )
    rows = [_row(p) for p in pairs]
    table = datasets.Dataset.from_list(rows, features=features)
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    table.save_to_disk(str(tmp))
    with open(tmp / "pairs.jsonl", "w", encoding="utf-8") as fh:
        for pair in pairs:
            fh.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest

"""MIRA's data in its official layout (aiming-lab/MIRA, the Hugging Face set YiyangAiLab/MIRA).

Zhou et al., "When Visualizing is the First Step to Reasoning: MIRA, a Benchmark for Visual
Chain-of-Thought", arXiv:2511.02779. The layout follows the official ``eval_api.py``::

    ROOT/<task>/<anything>.jsonl   rows {uid, image_path, question, answer}
                                   (rolling_dice_two: answer1 and answer2 instead of answer)
    ROOT/<task>/image/<stem>.{png,jpg,jpeg}   the question image, <stem> from image_path's name
    ROOT/<task>/cot/<stem>.* and <stem>_*      the intermediate (Visual-CoT) images, sorted

An item is a dict with ``id`` (``"<task>/<uid>"``), ``group`` (the task), ``aspect``, the row's
fields, ``image`` (the question image's path) and ``cot_images`` (paths, sorted by name).

    python -m paperzoo.mira.layout      # prints the path of the tiny data set shipped here
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ASPECTS",
    "ASPECT_NAMES",
    "GEAR_TASK",
    "IMAGE_SUFFIXES",
    "TASKS",
    "TINY",
    "TWO_ANSWER_TASK",
    "MiraDataError",
    "find_cot_images",
    "find_question_image",
    "load_items",
]

log = logging.getLogger(__name__)

TINY = Path(__file__).resolve().parent / "data" / "tiny"

# Task folder -> aspect: the official acc.py's TASK_TO_ASPECT (its Geometry, Physics, Puzzle
# and Causal are the paper's EG, PBR, ASLP and CT).
ASPECTS: dict[str, str] = {
    "convex_hull": "EG",
    "cubes_count": "EG",
    "cubes_missing": "EG",
    "localizer": "EG",
    "mirror_pattern": "EG",
    "overlap": "EG",
    "billiards": "PBR",
    "electric_charge": "PBR",
    "mirror_clock": "PBR",
    "defuse_a_bomb": "ASLP",
    "multi_piece_puzzle": "ASLP",
    "puzzle": "ASLP",
    "trailer_cubes_count": "ASLP",
    "trailer_cubes_missing": "ASLP",
    "unfolded_cube": "ASLP",
    "gear_rotation": "CT",
    "paper_airplane": "CT",
    "rolling_dice_sum": "CT",
    "rolling_dice_top": "CT",
    "rolling_dice_two": "CT",
}
ASPECT_NAMES: dict[str, str] = {
    "EG": "Euclidean Geometry",
    "PBR": "Physics-Based Reasoning",
    "ASLP": "Abstract Spatial & Logical Puzzles",
    "CT": "Causal Transformations",
}
TASKS: tuple[str, ...] = tuple(sorted(ASPECTS))
OTHER_ASPECT = "other"  # a task folder the official code does not know
TWO_ANSWER_TASK = "rolling_dice_two"  # answer1 (red/black/same) and answer2 (an integer)
GEAR_TASK = "gear_rotation"  # items n.1 and n.2 count as one, right only when both are
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # the official lookup order


class MiraDataError(ValueError):
    """A data folder or row that is not in MIRA's official layout."""


def find_question_image(task_dir: Path, image_path: str) -> Path | None:
    """``task_dir/image/<stem>.png|.jpg|.jpeg`` (the first that exists), where ``<stem>`` is the
    stem of ``image_path``'s file name, as the official code looks it up; None if none does."""
    stem = Path(image_path).stem
    for suffix in IMAGE_SUFFIXES:
        path = task_dir / "image" / (stem + suffix)
        if path.is_file():
            return path
    return None


def find_cot_images(task_dir: Path, image_path: str) -> list[Path]:
    """The Visual-CoT images of an item: ``task_dir/cot/<stem>.*`` and ``<stem>_*`` with an
    image suffix, sorted by path (lexicographically, as the official code does: ``1_10``
    comes before ``1_2``)."""
    cot = task_dir / "cot"
    stem = Path(image_path).stem
    found = set(cot.glob(f"{stem}.*")) | set(cot.glob(f"{stem}_*"))
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _require(row: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    missing = [f for f in fields if f not in row or row[f] is None]
    if missing:
        raise MiraDataError(
            f"{where}: missing {', '.join(repr(f) for f in missing)} (a MIRA row has "
            f"{', '.join(fields)}; got keys {sorted(row)})"
        )
    for f in ("image_path", "question"):
        if f in fields and not (isinstance(row[f], str) and row[f].strip()):
            raise MiraDataError(f"{where}: {f!r} must be a non-empty string, got {row[f]!r}")


def _read_task(task_dir: Path, need_cot: bool) -> list[dict[str, Any]]:
    task = task_dir.name
    fields = ("uid", "image_path", "question")
    fields += ("answer1", "answer2") if task == TWO_ANSWER_TASK else ("answer",)
    items: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for jsonl in sorted(task_dir.glob("*.jsonl")):
        with open(jsonl, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{jsonl}:{n}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise MiraDataError(
                        f"{where}: not JSON ({exc}): {line.strip()[:80]!r}"
                    ) from None
                if not isinstance(row, dict):
                    raise MiraDataError(f"{where}: expected a JSON object, got {row!r:.80}")
                _require(row, fields, where)
                uid = str(row["uid"])
                if uid in seen:
                    raise MiraDataError(
                        f"{where}: uid {uid!r} repeats {seen[uid]} in task {task!r}"
                    )
                seen[uid] = where
                image = find_question_image(task_dir, row["image_path"])
                if image is None:
                    stem = Path(row["image_path"]).stem
                    raise MiraDataError(
                        f"{where}: no question image {task_dir / 'image' / stem}"
                        f"{{{','.join(IMAGE_SUFFIXES)}}} for image_path {row['image_path']!r}"
                    )
                cot = find_cot_images(task_dir, row["image_path"])
                if need_cot and not cot:
                    # The official code warns and sends the question image alone; so do we.
                    log.warning("%s: no Visual-CoT image %s/cot/%s[._]*", where, task_dir,
                                Path(row["image_path"]).stem)  # fmt: skip
                items.append(
                    {
                        **row,
                        "id": f"{task}/{uid}",
                        "uid": uid,
                        "group": task,
                        "task": task,
                        "aspect": ASPECTS.get(task, OTHER_ASPECT),
                        "image": str(image),
                        "cot_images": [str(p) for p in cot],
                    }
                )
    return items


def load_items(root: str | os.PathLike[str], *, need_cot: bool = False) -> list[dict[str, Any]]:
    """Every item under ``root`` (a folder of task folders), tasks in name order, rows in file
    order. ``need_cot``: warn about items without Visual-CoT images. Raises
    :class:`MiraDataError` naming the file and line of a bad row."""
    root = Path(root)
    if not root.is_dir():
        raise MiraDataError(f"MIRA data {root} is not a folder (expected ROOT/<task>/*.jsonl)")
    task_dirs = sorted({p.parent for p in root.glob("*/*.jsonl")})
    if not task_dirs:
        raise MiraDataError(
            f"no <task>/*.jsonl under {root}: point --data at the folder that holds the task "
            f"folders ({', '.join(TASKS[:3])}, ...), e.g. the one download_data.py writes"
        )
    unknown = [d.name for d in task_dirs if d.name not in ASPECTS]
    if unknown:
        log.warning("task folders not in MIRA's 20 (aspect %r): %s", OTHER_ASPECT, unknown)
    return [item for d in task_dirs for item in _read_task(d, need_cot)]


if __name__ == "__main__":
    print(TINY)

"""The official layout: tasks, rows, question and Visual-CoT images, and errors for bad rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from paperzoo.mira.layout import (
    ASPECTS,
    TASKS,
    MiraDataError,
    find_cot_images,
    find_question_image,
    load_items,
)

PNG = b"\x89PNG\r\n\x1a\n"  # the lookups only need the files to exist


def make_task(root: Path, task: str, rows: list, images=("1.png",), cot=()) -> Path:
    d = root / task
    (d / "image").mkdir(parents=True)
    (d / "cot").mkdir()
    for name in images:
        (d / "image" / name).write_bytes(PNG)
    for name in cot:
        (d / "cot" / name).write_bytes(PNG)
    (d / f"{task}.jsonl").write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    )
    return d


ROW = {"uid": 1, "image_path": "image/1.png", "question": "q?", "answer": 3}


def test_twenty_tasks_in_four_aspects():
    assert len(TASKS) == 20 and set(ASPECTS.values()) == {"EG", "PBR", "ASLP", "CT"}
    counts = {a: sum(v == a for v in ASPECTS.values()) for a in ("EG", "PBR", "ASLP", "CT")}
    assert counts == {"EG": 6, "PBR": 3, "ASLP": 6, "CT": 5}


def test_the_tiny_set_loads(tiny):
    items = load_items(tiny)
    assert [i["id"] for i in items] == [
        "convex_hull/1", "convex_hull/2", "gear_rotation/1.1", "gear_rotation/1.2",
        "gear_rotation/2.1", "gear_rotation/2.2", "mirror_clock/1", "rolling_dice_top/1",
        "rolling_dice_top/2", "rolling_dice_two/1", "rolling_dice_two/2",
    ]  # fmt: skip
    by_id = {i["id"]: i for i in items}
    assert [Path(p).name for p in by_id["rolling_dice_top/1"]["cot_images"]] == [
        "1_1.png",
        "1_2.png",
        "1_3.png",
    ]
    assert [Path(p).name for p in by_id["convex_hull/1"]["cot_images"]] == ["1.png"]
    assert by_id["rolling_dice_two/1"]["answer1"] == "red"
    assert by_id["gear_rotation/1.2"]["group"] == "gear_rotation"
    assert by_id["mirror_clock/1"]["aspect"] == "PBR"
    assert all(Path(i["image"]).is_file() for i in items)
    size = sum(p.stat().st_size for p in tiny.rglob("*") if p.is_file())
    assert size < 64 * 1024


def test_cot_images_are_stem_dot_or_stem_underscore_sorted_by_name(tmp_path):
    d = make_task(tmp_path, "billiards", [ROW], images=("1.jpg", "1.png"),
                  cot=("1_2.png", "1_10.png", "1.jpeg", "10.png", "1_x.txt", "2_1.png"))  # fmt: skip
    names = [p.name for p in find_cot_images(d, "anything/1.webp")]
    assert names == ["1.jpeg", "1_10.png", "1_2.png"]  # lexicographic, as the official code
    assert find_question_image(d, "image/1.jpg").name == "1.png"  # .png is tried first
    assert find_question_image(d, "image/7.png") is None


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["{not json"], r"billiards\.jsonl:1: not JSON"),
        (["[1, 2]"], "expected a JSON object"),
        ([{**ROW, "answer": None}], r":1: missing 'answer'"),
        ([{k: v for k, v in ROW.items() if k != "question"}], "missing 'question'"),
        ([{**ROW, "question": "  "}], "'question' must be a non-empty string"),
        ([ROW, "", {**ROW}], r":3: uid '1' repeats .*:1"),
        ([{**ROW, "image_path": "image/9.png"}], r"no question image .*image/9\{.png"),
    ],
)
def test_bad_rows_name_the_file_line_and_fix(tmp_path, rows, match):
    make_task(tmp_path, "billiards", rows)
    with pytest.raises(MiraDataError, match=match):
        load_items(tmp_path)


def test_rolling_dice_two_needs_both_answers(tmp_path):
    row = {"uid": 1, "image_path": "image/1.png", "question": "q?", "answer1": "red"}
    make_task(tmp_path, "rolling_dice_two", [row])
    with pytest.raises(MiraDataError, match="missing 'answer2'"):
        load_items(tmp_path)


def test_a_folder_without_tasks_says_where_to_point(tmp_path):
    with pytest.raises(MiraDataError, match=r"no <task>/\*\.jsonl under"):
        load_items(tmp_path)
    with pytest.raises(MiraDataError, match="is not a folder"):
        load_items(tmp_path / "missing")


def test_missing_cot_images_warn_at_visual_cot(tmp_path, caplog):
    make_task(tmp_path, "billiards", [ROW])
    (item,) = load_items(tmp_path, need_cot=True)
    assert item["cot_images"] == [] and "no Visual-CoT image" in caplog.text


def test_the_shipped_data_is_what_the_script_writes(tmp_path, tiny):
    """Regenerate with the committed script: the same rows (answers computed from the drawn
    scenes) and the same pixels."""
    from PIL import Image

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_tiny_data.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    shipped = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert shipped == fresh
    for rel in shipped:
        if rel.suffix == ".jsonl":
            assert (tiny / rel).read_text() == (tmp_path / rel).read_text(), rel
        else:
            a, b = Image.open(tiny / rel).convert("RGB"), Image.open(tmp_path / rel).convert("RGB")
            assert a.size == b.size and a.tobytes() == b.tobytes(), rel


def test_module_prints_the_tiny_path(tiny):
    out = subprocess.run([sys.executable, "-m", "paperzoo.mira.layout"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert Path(out.stdout.strip()) == tiny

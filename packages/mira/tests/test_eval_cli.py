"""End to end: ``paperzoo eval mira`` on the tiny data, Visual-CoT, 3 samples, the judge on,
against a scripted server; the summary is checked against numbers worked out here by hand.

SCRIPT gives each item's three answers with the verdict we reach by reading them: the rule
(first <answer>, strip + lowercase exact match; a judge for tagged failures except in
rolling_dice_two; both parts for rolling_dice_two) applied by hand, and the judge's verdicts in
JUDGE. The expected numbers are then computed from those hand verdicts only: pass@k by
enumerating subsets, gear pairs sample by sample, majority votes as written in MAJORITY.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from conftest import argv, request_key, summary_of

from paperzoo.eval.cli import main
from paperzoo.eval.testing import Reply, ScriptedChatServer, prompt_text
from paperzoo.mira.benchmark import build_prompt
from paperzoo.mira.layout import load_items

A = "<answer>{}</answer>".format
SCRIPT: dict[str, list[tuple[str, bool]]] = {
    "convex_hull/1": [(A(5), True), (A(" 5 "), True), ("I think 6", False)],  # gold 5
    "convex_hull/2": [(A("five"), True), (A(4), False), (A(4), False)],  # judge: five right
    "gear_rotation/1.1": [
        (A("Counterclockwise"), True),
        (A("clockwise"), False),
        (A("counterclockwise"), True),
    ],
    "gear_rotation/1.2": [(A(2), True), (A(2), True), (A(3), False)],
    "gear_rotation/2.1": [(A("clockwise"), True)] * 3,
    "gear_rotation/2.2": [(A(2), False), (A(3), True), (A(2), False)],
    "mirror_clock/1": [(A("2:25"), True), (A("9:35"), False), (A("2:25 pm"), True)],
    "rolling_dice_top/1": [(A(5), True), (A(2), False), (A(2), False)],  # gold 5
    "rolling_dice_top/2": [(A(3), False), (A(4), True), ("so 4", False)],  # gold 4
    "rolling_dice_two/1": [
        (A("Red, 10"), True),
        (A("red; sum = 9"), False),
        (A("The red die, total 10"), True),
    ],
    "rolling_dice_two/2": [(A("black, 8"), False), (A("same 8"), False), (A("red 8"), True)],
}
# What the judge replies about a response (every other judged response: "Incorrect"); the
# first time it is asked about 9:35 it rambles, and is asked again.
JUDGE = {A("five"): "Correct", A("2:25 pm"): "Correct."}
# By hand: the majority answer of each item, and whether it is right (ties: first seen).
MAJORITY = {
    "convex_hull/1": True,  # 5, 5, (no vote)
    "convex_hull/2": False,  # 4 twice
    "gear_rotation/1.1": True,  # counterclockwise twice
    "gear_rotation/1.2": True,  # 2 twice
    "gear_rotation/2.1": True,
    "gear_rotation/2.2": False,  # 2 twice
    "mirror_clock/1": True,  # three answers once each: 2:25, seen first
    "rolling_dice_top/1": False,  # 2 twice
    "rolling_dice_top/2": False,  # 3 and 4 once each: 3 first
    "rolling_dice_two/1": True,  # (red, 10) twice
    "rolling_dice_two/2": False,  # three ways once each: black, 8 first
}
# Which responses the judge must see: tagged exact-match failures outside rolling_dice_two.
JUDGED = {A("five"), A(4), A("clockwise"), A(3), A(2), A("9:35"), A("2:25 pm")}
ASPECT = {"convex_hull": "EG", "mirror_clock": "PBR", "gear_rotation": "CT",
          "rolling_dice_top": "CT", "rolling_dice_two": "CT"}  # fmt: skip


def units_by_hand() -> list[tuple[str, list[bool], bool]]:
    """(task, per-sample verdicts, majority right) per scoring unit: gear n.1 and n.2 as one."""
    units = []
    for item_id, script in SCRIPT.items():
        task, uid = item_id.split("/")
        verdicts = [right for _, right in script]
        if task == "gear_rotation":
            if uid.endswith(".2"):
                continue
            other = [right for _, right in SCRIPT[item_id[:-1] + "2"]]
            both = [a and b for a, b in zip(verdicts, other)]
            units.append((task, both, MAJORITY[item_id] and MAJORITY[item_id[:-1] + "2"]))
        else:
            units.append((task, verdicts, MAJORITY[item_id]))
    return units


def enumerate_pass_at_k(verdicts: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(verdicts, k))
    return sum(any(s) for s in subsets) / len(subsets)


def tables_by_hand(value) -> dict:
    rows = [(task, float(value(v, m))) for task, v, m in units_by_hand()]

    def mean(xs):
        return 100 * sum(xs) / len(xs)

    return {
        "overall": mean([x for _, x in rows]),
        "aspects": {a: mean([x for t, x in rows if ASPECT[t] == a]) for a in ("EG", "PBR", "CT")},
        "groups": {t: mean([x for u, x in rows if u == t]) for t in ASPECT},
    }


def test_paperzoo_eval_mira_end_to_end(tiny: Path, tmp_path, capsys):
    items = {i["id"]: i for i in load_items(tiny)}
    assert set(items) == set(SCRIPT)
    key_to_id = {
        (build_prompt("visual_cot", i["question"]), Path(i["image"]).read_bytes()): i["id"]
        for i in items.values()
    }

    def answer(body, n):
        if body["model"] == "j":
            text = prompt_text(body)
            response = text.split("---\n    ", 1)[1].rsplit("\n    ---", 1)[0]
            if response == A("9:35") and n == 1:
                return "Hmm, the mirror makes this hard"
            return JUDGE.get(response, "Incorrect")
        return Reply(content=[text for text, _ in SCRIPT[key_to_id[request_key(body)]]])

    out = tmp_path / "out"
    with ScriptedChatServer(answer) as server:
        args = argv(tiny, out, server.url, "--set", "level=visual_cot", "--set", "samples=3",
                    "--set", "judge=true", "--cache", str(tmp_path / "c.sqlite"), judge=True)  # fmt: skip
        args.remove("--no-cache")
        assert main(args) == 0
    summary = summary_of(out)

    assert summary["scored"] == 11 and summary["failed"] == 0
    accuracy = tables_by_hand(lambda v, m: sum(v) / len(v))
    assert summary["overall"] == pytest.approx(accuracy["overall"])
    assert summary["groups"] == pytest.approx(accuracy["groups"])
    assert list(summary["groups"]) == [
        "convex_hull",
        "mirror_clock",
        "gear_rotation",
        "rolling_dice_top",
        "rolling_dice_two",
    ]  # aspect order
    assert summary["aspects"] == pytest.approx(accuracy["aspects"])
    assert summary["units"] == {"convex_hull": 2, "mirror_clock": 1, "gear_rotation": 2,
                                "rolling_dice_top": 2, "rolling_dice_two": 2}  # fmt: skip
    assert set(summary["pass_at_k"]) == {"1", "2", "3"}
    for k in (1, 2, 3):
        expected = tables_by_hand(lambda v, m, k=k: enumerate_pass_at_k(v, k))
        got = summary["pass_at_k"][str(k)]
        assert got["overall"] == pytest.approx(expected["overall"]), k
        assert got["aspects"] == pytest.approx(expected["aspects"]), k
        assert got["groups"] == pytest.approx(expected["groups"]), k
    assert summary["pass_at_k"]["1"]["overall"] == pytest.approx(summary["overall"])
    majority = tables_by_hand(lambda v, m: m)
    for part in ("overall", "aspects", "groups"):
        assert summary["majority_vote"][part] == pytest.approx(majority[part]), part

    # The hand arithmetic, spelled out once: 9 units with 2,1,2,1,1,1,1,2,1 right of 3.
    assert summary["overall"] == pytest.approx(100 * 12 / 27)
    assert summary["majority_vote"]["overall"] == pytest.approx(100 * 4 / 9)

    model = [b for b in server.requests if b["model"] == "m"]
    judge = [b for b in server.requests if b["model"] == "j"]
    assert len(model) == 11 and all(b["n"] == 3 for b in model)
    seen = {prompt_text(b).split("---\n    ", 1)[1].rsplit("\n    ---", 1)[0] for b in judge}
    assert seen == JUDGED  # never a missing tag, never rolling_dice_two, never a match
    # one request per (item, distinct judged response), plus the re-ask about 9:35
    # (convex_hull/2: five, 4; gear 1.1: clockwise; 1.2: 3; 2.2: 2; mirror_clock: 9:35,
    # 2:25 pm; rolling_dice_top/1: 2; /2: 3)
    assert len(judge) == 9 + 1
    table = capsys.readouterr().out
    assert "mira" in table and "convex_hull" in table

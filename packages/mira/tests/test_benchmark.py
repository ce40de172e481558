"""What is sent at each level (read back from the server's request bodies), the options,
the judge path and the registration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import argv, image_bytes, summary_of, user_content

from paperzoo.eval.cli import configure, load_benchmark, main
from paperzoo.eval.testing import Reply, ScriptedChatServer, prompt_text
from paperzoo.mira.benchmark import Mira, build_prompt
from paperzoo.mira.layout import load_items

END = "The final answer is placed in <answer></answer>."
OFFICIAL = {  # the wording of the official eval_api.py PROMPT_TEMPLATES, written out
    "direct": "Question: {q}\n\nPlease provide the final answer directly. " + END,
    "text_cot": "Question: {q}\n\nPlease first conduct step-by-step reasoning, and then "
    "provide the final answer. " + END,
    "visual_cot": "Based on the question image and the intermediate reasoning image(s) "
    "provided, please continue the reasoning to solve the problem.\n\nQuestion: {q}\n\n" + END,
}


@pytest.mark.parametrize("level", ["direct", "text_cot", "visual_cot"])
def test_each_level_sends_the_official_prompt_and_images(tiny, tmp_path, level):
    items = load_items(tiny)
    with ScriptedChatServer(lambda body, n: "<answer>0</answer>") as server:
        assert main(argv(tiny, tmp_path / "out", server.url, "--set", f"level={level}")) == 0
    assert len(server.requests) == len(items)
    bodies = {}
    for body in server.requests:
        content = user_content(body)
        bodies[(content[-1]["text"], image_bytes(content[0]))] = body
    for item in items:
        body = bodies.pop(
            (OFFICIAL[level].format(q=item["question"]), Path(item["image"]).read_bytes())
        )
        content = user_content(body)
        images = [image_bytes(p) for p in content[:-1]]
        assert [p["type"] for p in content] == ["image_url"] * len(images) + ["text"]
        expected = [item["image"], *(item["cot_images"] if level == "visual_cot" else [])]
        assert images == [Path(p).read_bytes() for p in expected], item["id"]
        assert body["n"] == 1 and body["temperature"] == 0.0 and body["max_tokens"] == 16384
    assert not bodies
    dice = next(i for i in items if i["id"] == "rolling_dice_top/1")
    assert build_prompt(level, dice["question"]).endswith(END)
    if level == "visual_cot":  # the question image and 3 intermediate images, in order
        assert len(dice["cot_images"]) == 3


def test_options_through_set():
    bench = configure(load_benchmark("mira"), ["level=visual_cot", "samples=8"])
    assert isinstance(bench, Mira) and bench.level == "visual_cot" and bench.samples == 8
    assert bench.ks == (1, 2, 4, 8) and bench.sampling_temperature == 1.0
    assert configure(Mira(), ["k=8", "samples=8"]).ks == (8,)  # either order
    assert configure(Mira(), ["samples=6"]).ks == (1, 2, 4, 6)
    assert Mira(level="direct_answer").level == "direct"  # the official scenario name
    assert configure(Mira(), ["judge=true"]).needs_judge and not Mira().needs_judge
    with pytest.raises(ValueError, match="unknown MIRA level 'visual'; choose one of"):
        configure(Mira(), ["level=visual"])
    with pytest.raises(ValueError, match="1 <= k <= samples"):
        _ = Mira(samples=2, k=(4,)).ks


def test_bad_options_and_data_fail_the_command(tiny, tmp_path, capsys):
    with ScriptedChatServer(lambda body, n: "x") as server:
        assert main(argv(tiny, tmp_path / "a", server.url, "--set", "k=4")) == 2
        assert "1 <= k <= samples" in capsys.readouterr().err
        assert main(argv(tmp_path, tmp_path / "b", server.url)) == 2
        assert "no <task>/*.jsonl" in capsys.readouterr().err
    assert server.requests == []


def test_several_samples_are_one_request_with_n(tiny, tmp_path):
    with ScriptedChatServer(lambda body, n: Reply(content=["<answer>5</answer>", "no", "no"])) as s:
        assert main(argv(tiny, tmp_path / "o", s.url, "--set", "samples=3", "--limit", "1")) == 0
    (body,) = s.requests
    assert body["n"] == 3 and body["temperature"] == 1.0
    summary = summary_of(tmp_path / "o")  # convex_hull/1, gold 5: 1 of 3 right
    assert summary["overall"] == pytest.approx(100 / 3)
    assert summary["pass_at_k"]["2"]["overall"] == pytest.approx(100 * (1 - 1 / 3))
    assert summary["pass_at_k"]["3"]["overall"] == 100.0
    assert summary["majority_vote"]["overall"] == 100.0  # "5" is the only vote


def test_predictions_file_with_the_wrong_number_of_samples_fails_the_item(tiny, tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        json.dumps({"id": "convex_hull/1", "predictions": ["<answer>5</answer>"]}) + "\n"
    )
    args = ["mira", "--data", str(tiny), "--out", str(tmp_path / "o"), "--predictions", str(preds),
            "--limit", "2", "--set", "samples=2", "--no-cache"]  # fmt: skip
    assert main(args) == 0
    summary = summary_of(tmp_path / "o")
    assert summary["failed"] == 2 and summary["scored"] == 0
    assert "expected 2 answers (samples), got 1" in summary["failures"]["convex_hull/1"]
    assert "no prediction" in summary["failures"]["convex_hull/2"]


def test_judge_off_never_asks_a_judge_and_on_asks_only_the_failures(tiny, tmp_path):
    def answer(body, n):
        text = prompt_text(body)
        if "You are a strict and precise evaluator" in text:
            return "Correct"  # a lenient judge: whatever it is asked becomes right
        return "<answer>wrong</answer>" if "blue points" in text else "no tag at all"

    with ScriptedChatServer(answer) as server:
        assert main(argv(tiny, tmp_path / "off", server.url)) == 0
        asked_off = len(server.requests)
        assert main(argv(tiny, tmp_path / "on", server.url, "--set", "judge=true", judge=True)) == 0
    judge_bodies = [b for b in server.requests[asked_off:] if b["model"] == "j"]
    # only the two convex_hull items had a tag that failed exact match; no tag is never judged
    assert len(judge_bodies) == 2
    assert all(b["temperature"] == 0.0 and b["max_tokens"] == 25 for b in judge_bodies)
    assert all("<answer>wrong</answer>" in prompt_text(b) for b in judge_bodies)
    assert asked_off == 11 and summary_of(tmp_path / "off")["overall"] == 0.0
    on = summary_of(tmp_path / "on")
    assert on["groups"]["convex_hull"] == 100.0 and on["overall"] == pytest.approx(100 * 2 / 9)


def test_a_judge_that_never_answers_the_format_fails_the_item(tiny, tmp_path):
    def answer(body, n):
        text = prompt_text(body)
        return (
            "I cannot say"
            if "You are a strict and precise evaluator" in text
            else "<answer>7</answer>"
        )

    with ScriptedChatServer(answer) as server:
        args = argv(tiny, tmp_path / "o", server.url, "--set", "judge=true", "--limit", "1",
                    judge=True)  # fmt: skip
        assert main(args) == 0
    summary = summary_of(tmp_path / "o")
    assert summary["failed"] == 1 and "3 unreadable answers" in summary["failures"]["convex_hull/1"]
    assert sum(b["model"] == "j" for b in server.requests) == 3


def test_registered_and_listed_without_the_eval_stack():
    code = (
        "import sys\n"
        "from paperzoo.core import get_metric, get_paper\n"
        "spec = get_metric('mira')\n"
        "assert spec.factory == 'paperzoo.mira.benchmark:Mira' and 'benchmark' in spec.tags\n"
        "assert get_paper('mira').arxiv == '2511.02779'\n"
        "print('openai' in sys.modules or 'paperzoo.mira.benchmark' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_official_result_files_are_read_as_predictions(tiny, tmp_path):
    """A folder of eval_api.py outputs: this level's rows, failed calls skipped."""
    official = tmp_path / "official"
    official.mkdir()
    rows = [
        {"uid": 1, "scenario": "visual_cot", "response": "<answer>5</answer>"},
        {"uid": 1, "scenario": "direct_answer", "response": "<answer>1</answer>"},
        {"uid": 2, "scenario": "visual_cot", "response": "API_CALL_FAILED"},
        {"uid": 2, "scenario": "visual_cot", "response": "<answer>4</answer>"},
    ]
    (official / "qwen3_vl_convex_hull.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    args = ["mira", "--data", str(tiny), "--out", str(tmp_path / "o"), "--predictions",
            str(official), "--set", "level=visual_cot", "--no-cache"]  # fmt: skip
    assert main(args) == 0
    summary = summary_of(tmp_path / "o")
    assert summary["groups"]["convex_hull"] == 50.0  # 5 right (gold 5), 4 wrong (gold 5)
    assert summary["scored"] == 2 and summary["failed"] == 9  # the other tasks: no prediction
    assert Mira(level="direct").read_predictions(official) == {
        "convex_hull/1": ["<answer>1</answer>"]
    }

"""IntelligentBench: the parquet, what the judge is sent, the score, failures, the command."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paperzoo.eval.cli import main as eval_main
from paperzoo.eval.testing import ScriptedChatServer, prompt_text
from paperzoo.vqva.benchmark import (
    IntelligentBench,
    judge_prompt,
    load_items,
    parse_judgement,
)
from paperzoo.vqva.tiny import data_path, judge_rule

TINY = data_path("intelligentbench_tiny.parquet")
PREDS = data_path("tiny_predictions/predictions.jsonl")


def _eval(tmp_path: Path, server, *extra: str, data: Path = TINY, preds: Path = PREDS) -> dict:
    out = tmp_path / "out"
    rc = eval_main(["intelligentbench", "--data", str(data), "--predictions", str(preds),
                    "--out", str(out), "--judge-base-url", server.url, "--judge-model", "judge",
                    "--no-cache", "--max-attempts", "2", *extra])  # fmt: skip
    assert rc == 0
    return json.loads((out / "summary.json").read_text())


def _write(path: Path, rows: dict) -> Path:
    pq.write_table(pa.table(rows), path)
    return path


def test_tiny_parquet_loads_in_the_official_schema():
    table = pq.read_table(TINY)
    assert set(table.column_names) == {"images", "caption", "class"}
    items = load_items(TINY)
    assert [i["id"] for i in items] == ["0", "1", "2", "3", "4", "5"]
    assert [i["group"] for i in items] == ["world", "world", "design", "design",
                                           "reasoning", "reasoning"]  # fmt: skip
    row = table.slice(0, 1).to_pylist()[0]
    assert items[0]["question_image"] == row["images"][0]
    assert items[0]["answer_image"] == row["images"][1]
    assert items[0]["question"] == row["caption"]["q"]


def test_bad_rows_are_errors_that_name_the_row(tmp_path):
    good = pq.read_table(TINY).to_pydict()
    bad_class = dict(good, **{"class": ["w", "x", "d", "d", "r", "r"]})
    with pytest.raises(ValueError, match=r"row 1: class 'x' is not one of \['d', 'r', 'w'\]"):
        load_items(_write(tmp_path / "a.parquet", bad_class))
    one_image = dict(good, images=[good["images"][0][:1], *good["images"][1:]])
    with pytest.raises(ValueError, match=r"row 0: 'images' must hold .* got 1 image"):
        load_items(_write(tmp_path / "b.parquet", one_image))
    not_image = dict(good, images=[[b"hello", b"world"], *good["images"][1:]])
    with pytest.raises(ValueError, match=r"row 0: images\[0\]: not a PNG"):
        load_items(_write(tmp_path / "c.parquet", not_image))
    no_q = dict(good, caption=[{"q": "", "a": ""}, *good["caption"][1:]])
    with pytest.raises(ValueError, match="row 0: caption must hold a non-empty question"):
        load_items(_write(tmp_path / "d.parquet", no_q))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['class'\]"):
        load_items(_write(tmp_path / "e.parquet", {k: good[k] for k in ("images", "caption")}))
    with pytest.raises(FileNotFoundError, match="VQVA/IntelligentBench"):
        load_items(tmp_path / "missing.parquet")


def test_an_id_column_is_used_when_there_is_one(tmp_path):
    rows = pq.read_table(TINY).to_pydict()
    rows["id"] = [f"q{k}" for k in range(6)]
    assert load_items(_write(tmp_path / "ids.parquet", rows))[3]["id"] == "q3"


def jpeg(data: bytes) -> bytes:
    """The bytes Pillow's RGB JPEG re-encoding gives (what the official script sends)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="jpeg")
    return buf.getvalue()


def test_what_the_judge_is_sent(tmp_path):
    with ScriptedChatServer(judge_rule) as server:
        _eval(tmp_path, server)
    assert len(server.requests) == 6
    items = {i["question"]: i for i in load_items(TINY)}
    for body in server.requests:
        assert body["model"] == "judge"
        assert body["temperature"] == 1.0 and body["max_tokens"] == 500 and body["n"] == 1
        system, user = body["messages"]
        assert system == {"role": "system", "content": judge_prompt()}
        assert user["role"] == "user"
        kinds = [p["type"] for p in user["content"]]
        assert kinds == ["text", "text", "text", "image_url", "text", "image_url", "text",
                         "image_url"]  # fmt: skip
        texts = [p["text"] for p in user["content"] if p["type"] == "text"]
        assert texts[0] == " question is: " and texts[2:] == [
            " Question image",
            " GT answer image",
            "model-generated (AS) answer image",
        ]
        item = items[texts[1]]
        images = [p["image_url"] for p in user["content"] if p["type"] == "image_url"]
        assert all(i["detail"] == "low" for i in images)
        # the official script's JPEG re-encoding of the question, GT and generated image
        sent = [base64.b64decode(i["url"].split(",", 1)[1]) for i in images]
        generated = (PREDS.parent / f"{item['id']}.png").read_bytes()
        assert sent == [jpeg(item["question_image"]), jpeg(item["answer_image"]), jpeg(generated)]
        assert all(i["url"].startswith("data:image/jpeg;base64,") for i in images)
    assert '"reason_of_score"' in judge_prompt() and "2: The AS can answer" in judge_prompt()


def test_judge_options_apply_through_set(tmp_path):
    with ScriptedChatServer(judge_rule) as server:
        _eval(tmp_path, server, "--set", "judge_temperature=0", "--set", "image_detail=high")
    body = server.requests[0]
    assert body["temperature"] == 0
    assert {p["image_url"]["detail"] for p in body["messages"][1]["content"]
            if p["type"] == "image_url"} == {"high"}  # fmt: skip


def test_jpeg_reencoding_like_the_official_script():
    item = load_items(TINY)[0]
    request = IntelligentBench().judge_request(item, item["answer_image"])
    urls = [p["image_url"]["url"] for p in request.messages[1]["content"] if "image_url" in p]
    assert len(urls) == 3 and all(u.startswith("data:image/jpeg;base64,") for u in urls)


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 2, "reason_of_score": "fine"}', 2),
        ('```json\n{"score": 1, "reason_of_score": "ok"}\n```', 1),
        ('Here it is: {"score": 0, "reason_of_score": "cut sh', 0),  # the regex fallback
        ('{"score": "2", "reason_of_score": "string"}', 2),
        ('{"score": 1.0}', 1),
    ],
)
def test_parse_judgement_reads_what_the_official_script_reads(text, score):
    assert parse_judgement(text)[0] == score


@pytest.mark.parametrize(
    "text",
    [
        "no json",
        '{"score": 3}',
        '{"reason_of_score": "x"}',
        "[2]",
        '{"score": true}',
        '{"score": null}',
    ],
)
def test_parse_judgement_rejects_answers_without_a_0_1_2_score(text):
    with pytest.raises(ValueError):
        parse_judgement(text)


def test_score_is_sum_over_2n_overall_and_per_class(tmp_path):
    # A judge scripted per question; the per-class sums are computed by hand below.
    scores = {0: 2, 1: 2, 2: 0, 3: 1, 4: 1, 5: 0}  # w: 2, 2; d: 0, 1; r: 1, 0
    questions = {i["question"]: int(i["id"]) for i in load_items(TINY)}

    def answer(body, n):
        question = prompt_text(body).split("\n")[1]
        return json.dumps({"score": scores[questions[question]], "reason_of_score": "r"})

    with ScriptedChatServer(answer) as server:
        summary = _eval(tmp_path, server)
    assert summary["groups"]["world"] == pytest.approx(100 * (2 + 2) / (2 * 2))  # 100
    assert summary["groups"]["design"] == pytest.approx(100 * (0 + 1) / (2 * 2))  # 25
    assert summary["groups"]["reasoning"] == pytest.approx(100 * (1 + 0) / (2 * 2))  # 25
    assert summary["overall"] == pytest.approx(100 * 6 / (2 * 6))  # 50
    assert summary["points"] == {"overall": 6, "design": 1, "reasoning": 1, "world": 4}


def test_malformed_judge_output_is_asked_again_then_failed_and_left_out(tmp_path):
    items = load_items(TINY)
    garbled = items[2]["question"]  # a design item: never readable
    late = items[4]["question"]  # a reasoning item: readable on the third answer

    def answer(body, n):
        question = prompt_text(body).split("\n")[1]
        if question == garbled:
            return "I think it is pretty good."
        if question == late and n < 3:
            return '{"score": 7}' if n == 1 else "```json\n{oops\n```"
        return judge_rule(body, n)

    with ScriptedChatServer(answer) as server:
        summary = _eval(tmp_path, server)
    assert server.asked[prompt_text_of(garbled)] == 3  # tries=3, then failed
    assert server.asked[prompt_text_of(late)] == 3
    assert summary["scored"] == 5 and summary["failed"] == 1
    assert list(summary["failures"]) == ["2"] and "3 unreadable answers" in summary["failures"]["2"]
    # judge_rule on the 5 scored items: w 2, 0; d 1 (item 3); r 2, 1. Item 2 is out of N.
    assert summary["groups"]["design"] == pytest.approx(100 * 1 / 2)
    assert summary["groups"]["world"] == pytest.approx(100 * 2 / 4)
    assert summary["groups"]["reasoning"] == pytest.approx(100 * 3 / 4)
    assert summary["overall"] == pytest.approx(100 * 6 / 10)
    record = [json.loads(x) for x in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    assert {r["id"]: r["status"] for r in record}["2"] == "failed"


def prompt_text_of(question: str) -> str:
    return "\n".join([" question is: ", question, " Question image", " GT answer image",
                      "model-generated (AS) answer image"])  # fmt: skip


def test_missing_answer_image_is_a_failed_item(tmp_path):
    lines = PREDS.read_text().splitlines()
    preds = tmp_path / "preds.jsonl"
    lines[1] = json.dumps({"id": "1", "prediction": "nowhere.png"})
    preds.write_text("\n".join(lines[:5]) + "\n")  # item 5 has no line at all
    for k in range(6):
        (tmp_path / f"{k}.png").write_bytes((PREDS.parent / f"{k}.png").read_bytes())
    with ScriptedChatServer(judge_rule) as server:
        summary = _eval(tmp_path, server, preds=preds)
    assert summary["failed"] == 2 and set(summary["failures"]) == {"1", "5"}
    assert len(server.requests) == 4  # nothing is asked for them


def test_end_to_end_tiny_run_matches_the_hand_computation(tmp_path, capsys):
    with ScriptedChatServer(judge_rule) as server:
        summary = _eval(tmp_path, server)
    # judge_rule: 2 if generated == ground truth, 0 if == question image, else 1.
    # predictions: 0 GT (w) 2, 1 question (w) 0, 2 GT (d) 2, 3 other (d) 1, 4 GT (r) 2, 5 other (r) 1
    assert summary["scored"] == 6 and summary["failed"] == 0
    assert summary["groups"] == pytest.approx(
        {"world": 100 * 2 / 4, "design": 100 * 3 / 4, "reasoning": 100 * 3 / 4}
    )
    assert summary["overall"] == pytest.approx(100 * 8 / 12)
    assert "66.67" in capsys.readouterr().out


def test_without_predictions_the_error_says_how_to_make_them(tmp_path, capsys):
    with ScriptedChatServer(judge_rule) as server:
        rc = eval_main(["intelligentbench", "--data", str(TINY), "--out", str(tmp_path / "o"),
                        "--model", "some-vlm", "--model-base-url", server.url,
                        "--judge-base-url", server.url, "--judge-model", "judge",
                        "--no-cache"])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "--predictions FILE" in err and "export_generation_inputs" in err
    assert not server.requests


def test_export_generation_inputs(tmp_path):
    from paperzoo.vqva.benchmark import export_generation_inputs

    path = export_generation_inputs(TINY, tmp_path / "inputs")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    items = load_items(TINY)
    assert [x["id"] for x in lines] == [i["id"] for i in items]
    assert (path.parent / lines[3]["question_image"]).read_bytes() == items[3]["question_image"]


def test_registered_benchmark_and_paper():
    from paperzoo.core import get_metric, get_paper

    spec = get_metric("intelligentbench")
    assert "benchmark" in spec.tags and spec.factory == "paperzoo.vqva.benchmark:intelligentbench"
    assert get_paper("vqva").arxiv == "2511.20573"

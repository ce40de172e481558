"""``paperzoo eval decapbench`` and ``feedquill`` end to end against the scripted judge."""

from __future__ import annotations

import base64
import io
import json

import pytest
from conftest import DCScoreJudge, fenced, kind
from PIL import Image

from paperzoo.decapbench.benchmark import load_decapbench
from paperzoo.eval.cli import main
from paperzoo.eval.testing import Reply, ScriptedChatServer, prompt_text

# shapes_a worked by hand in test_dcscore; shapes_b: every unit right and matched once.
SHAPES_A = 43.674931
SHAPES_B = 100.0


def judge_args(url):
    return ["--judge-base-url", url, "--judge-model", "gpt-4o-2024-05-13",
            "--judge-api-key", "EMPTY", "--max-attempts", "2"]  # fmt: skip


def test_tiny_dcscore_equals_the_hand_computation(tiny, tmp_path, capsys):
    judge = DCScoreJudge(tiny)
    out, cache = tmp_path / "out", str(tmp_path / "c.sqlite")
    with ScriptedChatServer(judge) as server:
        argv = ["decapbench", "--data", str(tiny), "--predictions", str(tiny / "captions.jsonl"),
                "--out", str(out), "--cache", cache, *judge_args(server.url)]  # fmt: skip
        assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == pytest.approx((SHAPES_A + SHAPES_B) / 2, abs=1e-4)
    assert summary["scored"] == 2 and summary["failed"] == 1
    assert "unreadable" in summary["failures"]["shapes_c.png"]
    records = {
        json.loads(line)["id"]: json.loads(line)
        for line in (out / "items.jsonl").read_text().splitlines()
    }
    assert records["shapes_a.png"]["result"]["score"] == pytest.approx(SHAPES_A, abs=1e-4)
    assert "decapbench" in capsys.readouterr().out

    # what the judge was sent: the official settings, the image only with verification
    by_kind = {}
    for body in server.requests:
        by_kind.setdefault(kind(prompt_text(body)), []).append(body)
    assert len(by_kind["extract"]) == 2 + 3  # shapes_c asked 3 times, then failed
    assert len(by_kind["match"]) == len(by_kind["verify"]) == 2
    for what, (n, temperature) in {
        "extract": (1, 1.0),
        "match": (3, 1.0),
        "verify": (3, 0.3),
    }.items():
        body = by_kind[what][0]
        assert (body["n"], body["temperature"], body["max_tokens"]) == (n, temperature, 2000)
        assert body["model"] == "gpt-4o-2024-05-13"
        assert body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
        images = [
            p
            for p in body["messages"][1]["content"]
            if isinstance(p, dict) and p.get("type") == "image_url"
        ]
        assert len(images) == (what == "verify")
    part = next(
        p for p in by_kind["verify"][0]["messages"][1]["content"] if p["type"] == "image_url"
    )
    assert part["image_url"]["detail"] == "high" and part["image_url"]["url"].startswith(
        "data:image/jpeg;base64,"
    )
    sent = Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
    assert sent.format == "JPEG" and sent.size == (64, 64)
    verify_text = prompt_text(by_kind["verify"][0])
    name = "shapes_a.png" if "red circle" in verify_text else "shapes_b.png"
    oracle = {it["id"]: it for it in load_decapbench(tiny)}[name]
    assert f">>> Reference Caption:\n{oracle['oracle_caption']}" in verify_text
    assert '"relevance"' not in verify_text  # units are shown without it


def test_captions_generated_by_the_model_under_test(tiny, tmp_path):
    """Without --predictions the model under test captions each image (image + prompt)."""
    judge = DCScoreJudge(tiny)

    def answer(body, n):
        if kind(prompt_text(body)) == "caption":
            jpeg = body["messages"][0]["content"][0]["image_url"]["url"]
            im = Image.open(io.BytesIO(base64.b64decode(jpeg.split(",", 1)[1]))).convert("RGB")
            # the model "sees" the image: shapes_a has its red circle at (10, 32)
            red = im.getpixel((10, 32))[0] > 200 and im.getpixel((10, 32))[1] < 100
            name = "shapes_a.png" if red else "shapes_b.png"
            return judge.captions[name]
        return judge(body, n)

    out = tmp_path / "out"
    with ScriptedChatServer(answer) as server:
        argv = ["decapbench", "--data", str(tiny), "--out", str(out), "--limit", "2",
                "--model-base-url", server.url, "--model", "captioner", "--model-api-key", "EMPTY",
                "--cache", str(tmp_path / "c.sqlite"), *judge_args(server.url),
                "--set", "caption_prompt=Describe it."]  # fmt: skip
        assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"] == pytest.approx((SHAPES_A + SHAPES_B) / 2, abs=1e-4)
    assert summary["model"]["requests"] == 2
    captions = [b for b in server.requests if kind(prompt_text(b)) == "caption"]
    assert {prompt_text(b) for b in captions} == {"Describe it."}


def test_bad_data_is_a_clear_error(tmp_path, tiny):
    (tmp_path / "images").mkdir()
    oracle = tmp_path / "human_annotated_oracle_facts.jsonl"
    oracle.write_text('{"image_name": "x.png", "oracle_caption": "c"}\n')
    with pytest.raises(ValueError, match=r"oracle_facts.jsonl:1: expected"):
        load_decapbench(tmp_path)
    oracle.write_text('{"image_name": "x.png", "oracle_caption": "c", "oracle_facts": ["f"]}\n')
    with pytest.raises(FileNotFoundError, match="1 of 1 images are not in"):
        load_decapbench(tmp_path)


TRUTH = {"There is a red circle.", "The circle is on the left.", "There is a blue square."}
SAMPLES = [
    "There is a red circle. The circle is on the left.",  # 2 units, 0 wrong
    "There is a red circle. There is a green star. There is a blue square.",  # 3, 1 wrong
    "There is a red circle. The circle is on the left. There is a blue square.",  # 3, 0 wrong
    "There is a red circle. The circle is on the left.",  # a repeat of the first
]


def feedquill_judge(body, n):
    """A rule judge: units are sentences; a unit is right when it is in TRUTH."""
    text = prompt_text(body)
    what = kind(text)
    if what == "caption":
        return Reply(content=SAMPLES)
    if what == "extract":
        caption = text.rsplit("### Caption\n", 1)[1].split("\n### Atomic Facts")[0]
        facts = [s.strip() + "." for s in caption.split(".") if s.strip()]
        return fenced([{"fact": f, "relevance": 1} for f in facts])
    assert what == "verify" and "Reference Caption" not in text  # image-only verification
    facts = [
        json.loads(line.strip().rstrip(","))["fact"]
        for line in text.splitlines()
        if line.strip().startswith('{"fact"')
    ]
    return fenced([{"fact": f, "verification": int(f in TRUTH)} for f in facts])


def test_feedquill_pairs_follow_fewer_hallucinations_then_more_units(tmp_path, tiny):
    import datasets

    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes((tiny / "images" / "shapes_a.png").read_bytes())
    out = tmp_path / "out"
    with ScriptedChatServer(feedquill_judge) as server:
        argv = ["feedquill", "--data", str(images), "--out", str(out), "--set", "samples=4",
                "--model-base-url", server.url, "--model", "policy", "--model-api-key", "EMPTY",
                "--cache", str(tmp_path / "c.sqlite"), *judge_args(server.url)]  # fmt: skip
        assert main(argv) == 0
    caption_request = next(b for b in server.requests if kind(prompt_text(b)) == "caption")
    assert caption_request["n"] == 4 and caption_request["temperature"] == 0.7
    summary = json.loads((out / "summary.json").read_text())
    # unit precision of the 4 captions: 1, 2/3, 1, 1
    assert summary["overall"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 1) / 4)
    # ranks: S2 (0 wrong, 3 units) > S0 (0 wrong, 2 units) > S1 (1 wrong); S3 repeats S0
    ds = datasets.load_from_disk(summary["dpo_dataset"])
    got = {(SAMPLES.index(r["chosen"][0]["content"][0]["text"]),
            SAMPLES.index(r["rejected"][0]["content"][0]["text"])) for r in ds}  # fmt: skip
    assert got == {(2, 0), (2, 1), (0, 1)} and summary["dpo_pairs"] == len(ds) == 3
    row = ds[0]
    assert row["images"][0].size == (64, 64) and row["prompt"][0]["content"][0]["type"] == "image"

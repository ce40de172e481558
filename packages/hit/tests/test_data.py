"""The readers on small files in each benchmark's real layout, captions, and the tokenizer."""

from __future__ import annotations

import json

import pytest
import torch

from paperzoo.hit.data import (
    CaptionedDigits,
    TokenizingCollate,
    load_tokenizer,
    moving_digit_captions,
    read_activitynet_captions,
    read_lsmdc,
    read_msrvtt_1ka_test,
    read_msrvtt_train,
    train_wordpiece_tokenizer,
)


def _msrvtt(tmp_path):
    data = {
        "videos": [
            {"video_id": "video0", "split": "train"},
            {"video_id": "video1", "split": "validate"},
            {"video_id": "video2", "split": "train"},
            {"video_id": "video9", "split": "test"},
        ],
        "sentences": [
            {"video_id": "video0", "caption": "a man is cooking", "sen_id": 0},
            {"video_id": "video0", "caption": "someone cooks food", "sen_id": 1},
            {"video_id": "video1", "caption": "a dog runs", "sen_id": 2},
            {"video_id": "video2", "caption": "cars race", "sen_id": 3},
            {"video_id": "video9", "caption": "a cat sleeps", "sen_id": 4},
        ],
    }
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(data))
    (tmp_path / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\nvideo1\n")
    (tmp_path / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\nret0,msr9,video9,a cat is sleeping on a sofa\n"
        'ret1,msr2,video2,"cars, racing on a track"\n'
    )


def test_msrvtt_train_list_and_1ka_test_list(tmp_path):
    _msrvtt(tmp_path)
    nine_k = read_msrvtt_train(
        tmp_path / "MSRVTT_data.json", tmp_path / "videos", tmp_path / "MSRVTT_train.9k.csv"
    )
    assert [r.video_id for r in nine_k] == ["video0", "video1"]  # the list, not the JSON split
    assert nine_k[0].captions == ["a man is cooking", "someone cooks food"]
    assert nine_k[1].path == str(tmp_path / "videos" / "video1.mp4")
    official = read_msrvtt_train(tmp_path / "MSRVTT_data.json", tmp_path / "videos")
    assert [r.video_id for r in official] == ["video0", "video2"]  # split == "train"
    test = read_msrvtt_1ka_test(tmp_path / "MSRVTT_JSFUSION_test.csv", tmp_path / "videos")
    assert [(r.video_id, r.captions) for r in test] == [
        ("video9", ["a cat is sleeping on a sofa"]), ("video2", ["cars, racing on a track"]),
    ]  # fmt: skip
    (tmp_path / "bad.csv").write_text("video,caption\nvideo9,x\n")
    with pytest.raises(ValueError, match="JSFusion columns"):
        read_msrvtt_1ka_test(tmp_path / "bad.csv", tmp_path)
    (tmp_path / "list.csv").write_text("video_id\nvideo7\n")
    with pytest.raises(ValueError, match="video7"):
        read_msrvtt_train(tmp_path / "MSRVTT_data.json", tmp_path, tmp_path / "list.csv")


def test_activitynet_paragraphs_join_sentences_in_time_order(tmp_path):
    data = {
        "v_abc": {
            "duration": 20.0,
            "timestamps": [[8.0, 12.0], [0.5, 4.0]],
            "sentences": ["Then he jumps. ", " A man runs."],
        },
        "v_xyz": {"duration": 5.0, "timestamps": [[0, 5]], "sentences": ["A bird sings."]},
    }
    (tmp_path / "val_1.json").write_text(json.dumps(data))
    records = read_activitynet_captions(tmp_path / "val_1.json", tmp_path / "v")
    assert [r.video_id for r in records] == ["v_abc", "v_xyz"]
    assert records[0].captions == ["A man runs. Then he jumps."]
    assert records[0].path == str(tmp_path / "v" / "v_abc.mp4")


def test_lsmdc_tab_separated_annotations(tmp_path):
    lines = [
        "0001_American_Beauty_00.00.51.926-00.00.54.129\t00.00.51.926\t00.00.54.129\t"
        '00.00.51.000\t00.00.55.000\tSOMEONE\'s "head" turns.',
        "",
        "1012_Unbreakable_00.05.16.065-00.05.21.941\t0\t0\t0\t0\tHe sits down.",
    ]
    (tmp_path / "LSMDC16_annos_training.csv").write_text("\n".join(lines) + "\n")
    records = read_lsmdc(tmp_path / "LSMDC16_annos_training.csv", tmp_path / "avi")
    assert len(records) == 2
    assert records[0].captions == ['SOMEONE\'s "head" turns.']
    assert records[0].path == str(
        tmp_path / "avi" / "0001_American_Beauty"
        / "0001_American_Beauty_00.00.51.926-00.00.54.129.avi"
    )  # fmt: skip
    (tmp_path / "short.csv").write_text("clip\tonly\n")
    with pytest.raises(ValueError, match="6 tab-separated"):
        read_lsmdc(tmp_path / "short.csv", tmp_path)


def test_captions_are_seeded_paraphrases_that_name_digit_and_direction():
    a = moving_digit_captions("7_left", speed=2, digit_fraction=0.2, num_captions=6, seed=3)
    assert a == moving_digit_captions("7_left", speed=2, digit_fraction=0.2, num_captions=6, seed=3)
    assert len(set(a)) > 1
    for c in a:
        assert ("7" in c or "seven" in c) and "left" in c
        assert not any(w in c for w in ("large", "big", "huge", "quickly", "fast"))
    fast = moving_digit_captions("2_up", speed=4, digit_fraction=0.9, num_captions=20, seed=0)
    assert any(w in " ".join(fast) for w in ("quickly", "fast", "rapidly"))
    with pytest.raises(ValueError, match="down_left"):
        moving_digit_captions("2_down_left", speed=2, digit_fraction=0.5, num_captions=1, seed=0)


def test_tokenizer_trains_offline_and_round_trips_through_save_pretrained(tmp_path):
    texts = [c for d in range(5) for c in moving_digit_captions(
        f"{d}_right", speed=2, digit_fraction=0.8, num_captions=10, seed=d)]  # fmt: skip
    tok = train_wordpiece_tokenizer(texts, vocab_size=120, max_length=16)
    enc = tok("A large Seven drifting to the right")
    assert enc["input_ids"][0] == tok.cls_token_id and enc["input_ids"][-1] == tok.sep_token_id
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == (
        "a large seven drifting to the right"
    )
    tok.save_pretrained(tmp_path / "tok")
    again = load_tokenizer(str(tmp_path / "tok"))
    assert again("a big 3 moving up")["input_ids"] == tok("a big 3 moving up")["input_ids"]
    collate = TokenizingCollate(tok, max_length=5)
    clips, ids, mask, labels = collate(
        [(torch.zeros(2), "a big 3 moving up", 4), (torch.ones(2), "up", 1)]
    )
    assert ids.shape == mask.shape == (2, 5) and mask[1].tolist() == [1, 1, 1, 0, 0]
    assert labels.tolist() == [4, 1] and clips.shape == (2, 2)


def test_captioned_digits_pick_random_or_first_caption():
    from paperzoo.data.synthetic import DecodedVideos

    videos = DecodedVideos(torch.zeros(2, 3, 4, 8, 8, dtype=torch.uint8), [5, 6], num_frames=2)
    caps = [["a", "b", "c"], ["d", "e", "f"]]
    first = CaptionedDigits(videos, caps, caption_mode="first")
    assert [first[i][1:] for i in range(2)] == [("a", 5), ("d", 6)]
    torch.manual_seed(0)
    seen = {CaptionedDigits(videos, caps)[0][1] for _ in range(30)}
    assert seen == {"a", "b", "c"}
    with pytest.raises(ValueError, match="caption lists"):
        CaptionedDigits(videos, caps[:1])

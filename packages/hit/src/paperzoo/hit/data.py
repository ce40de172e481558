"""Video-text data for HiT: the three benchmarks' caption files, captioned moving digits, an
offline WordPiece tokenizer, and the tokenizing collate.

Readers (each returns :class:`CaptionedVideo` records: ``video_id``, ``path``, ``captions``):

- MSR-VTT, 1k-A split (JSFusion's, used by HiT, MMT, CLIP4Clip): the caption JSON
  (``videodatainfo.json`` / ``MSRVTT_data.json``, read by
  :class:`paperzoo.data.datasets.VideoTextDataset`), the 9k train list
  ``MSRVTT_train.9k.csv`` (a ``video_id`` column) and the test list ``MSRVTT_JSFUSION_test.csv``
  (``key,vid_key,video_id,sentence``: one caption for each of the 1,000 test videos).
- ActivityNet Captions, paragraph retrieval: ``train.json`` / ``val_1.json`` map
  ``"v_<id>"`` to ``{"duration", "timestamps", "sentences"}``; a video's sentences, joined in
  order, are its single caption.
- LSMDC: ``LSMDC16_annos_training.csv`` and friends, tab separated ``clip_id, start, end,
  start_aligned, end_aligned, sentence``; clip files are ``<movie>/<clip_id>.avi`` with the
  movie the clip id up to its last ``_``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "CaptionedVideo",
    "CaptionedVideoDataset",
    "TokenizingCollate",
    "load_tokenizer",
    "moving_digit_captions",
    "read_activitynet_captions",
    "read_lsmdc",
    "read_msrvtt_1ka_test",
    "read_msrvtt_train",
    "train_wordpiece_tokenizer",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass
class CaptionedVideo:
    """One video and its captions (several for MSR-VTT train, one paragraph for ActivityNet)."""

    video_id: str
    path: str
    captions: list[str] = field(default_factory=list)


# -- readers -----------------------------------------------------------------------------------


def _require(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist")
    return p


def read_msrvtt_train(
    json_path: str | os.PathLike[str],
    video_root: str | os.PathLike[str],
    train_list: str | os.PathLike[str] | None = None,
    ext: str = ".mp4",
) -> list[CaptionedVideo]:
    """MSR-VTT training videos with all their captions.

    ``train_list`` (``MSRVTT_train.9k.csv``, a ``video_id`` column) picks the 1k-A split's
    9,000 videos; without it, the JSON's own ``split == "train"`` videos (6,513)."""
    from paperzoo.data.datasets import VideoTextDataset

    ds = VideoTextDataset(json_path, video_root, split=None if train_list else "train", ext=ext)
    by_id = dict(zip(ds.video_ids, ds.captions, strict=True))
    if train_list:
        with open(_require(train_list, "MSR-VTT train list"), newline="") as f:
            ids = [row["video_id"] for row in csv.DictReader(f)]
        missing = [v for v in ids if v not in by_id]
        if missing:
            raise ValueError(f"{train_list}: videos {missing[:5]} have no caption in {json_path}")
    else:
        ids = ds.video_ids
    return [CaptionedVideo(v, str(Path(video_root) / f"{v}{ext}"), list(by_id[v])) for v in ids]


def read_msrvtt_1ka_test(
    test_csv: str | os.PathLike[str], video_root: str | os.PathLike[str], ext: str = ".mp4"
) -> list[CaptionedVideo]:
    """The 1k-A test list (``MSRVTT_JSFUSION_test.csv``): one sentence per video, in order."""
    with open(_require(test_csv, "MSR-VTT 1k-A test list"), newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"video_id", "sentence"} <= set(reader.fieldnames):
            raise ValueError(
                f"{test_csv}: expected the JSFusion columns key,vid_key,video_id,sentence; got "
                f"{reader.fieldnames}"
            )
        rows = list(reader)
    return [
        CaptionedVideo(
            r["video_id"], str(Path(video_root) / f"{r['video_id']}{ext}"), [r["sentence"]]
        )
        for r in rows
    ]


def read_activitynet_captions(
    json_path: str | os.PathLike[str], video_root: str | os.PathLike[str], ext: str = ".mp4"
) -> list[CaptionedVideo]:
    """ActivityNet Captions for paragraph retrieval: each video's sentences joined in time order."""
    data = json.loads(_require(json_path, "ActivityNet Captions JSON").read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{json_path}: expected {{video_id: {{timestamps, sentences}}}}")
    out = []
    for vid in sorted(data):
        item = data[vid]
        sentences = [s.strip() for s in item["sentences"]]
        stamps = item.get("timestamps") or [[0.0, 0.0]] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda i: float(stamps[i][0]))
        paragraph = " ".join(sentences[i] for i in order)
        out.append(CaptionedVideo(vid, str(Path(video_root) / f"{vid}{ext}"), [paragraph]))
    return out


def read_lsmdc(
    csv_path: str | os.PathLike[str], video_root: str | os.PathLike[str], ext: str = ".avi"
) -> list[CaptionedVideo]:
    """An LSMDC annotation file: ``clip_id \\t start \\t end \\t start_aligned \\t end_aligned
    \\t sentence`` per line; the clip is ``video_root/<movie>/<clip_id><ext>``."""
    out = []
    with open(_require(csv_path, "LSMDC annotation file"), newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or not row[0].strip():
                continue
            if len(row) < 6:
                raise ValueError(f"{csv_path}:{lineno}: expected 6 tab-separated fields, got {row}")
            clip_id, sentence = row[0].strip(), row[5].strip()
            movie = clip_id.rsplit("_", 1)[0]
            out.append(
                CaptionedVideo(
                    clip_id, str(Path(video_root) / movie / f"{clip_id}{ext}"), [sentence]
                )
            )
    if not out:
        raise ValueError(f"{csv_path}: no LSMDC clips")
    return out


class CaptionedVideoDataset(Dataset):
    """Clips of :class:`CaptionedVideo` records: items ``(clip, caption, index)``.

    The caption is a random one of the video's (``caption_mode="random"``, training) or the
    first (``"first"``, retrieval test). Clips are read by
    :class:`paperzoo.data.datasets.LabeledVideoDataset` (its ``clip_sampler``, ``num_frames``,
    ``transform``; unreadable files are skipped and counted)."""

    def __init__(
        self,
        records: Sequence[CaptionedVideo],
        *,
        clip_sampler: Any = None,
        num_frames: int | None = 8,
        transform: Callable[[Any], Any] | None = None,
        caption_mode: str = "random",
        max_bad_fraction: float = 0.01,
    ) -> None:
        from paperzoo.data.datasets import LabeledVideoDataset, VideoRecord

        if caption_mode not in ("random", "first"):
            raise ValueError(f"caption_mode must be 'random' or 'first', got {caption_mode!r}")
        if not records:
            raise ValueError("CaptionedVideoDataset needs at least one record")
        self.records = list(records)
        self.caption_mode = caption_mode
        self.videos = LabeledVideoDataset(
            [VideoRecord(r.path, i) for i, r in enumerate(self.records)],
            clip_sampler=clip_sampler, num_frames=num_frames, transform=transform,
            max_bad_fraction=max_bad_fraction,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Any, str, int]:
        clip, i = self.videos[index]  # label = record index; survives skipping
        texts = self.records[i].captions
        if self.caption_mode == "first" or len(texts) == 1:
            return clip, texts[0], i
        return clip, texts[int(torch.randint(len(texts), ()).item())], i


# -- moving digits with captions -------------------------------------------------------------

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIRECTION_WORDS = {
    "right": ("right", "to the right", "rightwards", "towards the right edge"),
    "left": ("left", "to the left", "leftwards", "towards the left edge"),
    "down": ("down", "downwards", "towards the bottom", "to the bottom"),
    "up": ("up", "upwards", "towards the top", "to the top"),
}
_VERBS = ("drifting", "moving", "sliding", "gliding", "travelling")
_TEMPLATES = (
    "a {size} {digit} {verb} {direction}",
    "the {digit} is {verb} {direction} {speed}",
    "a handwritten {digit} {verb} {speed} {direction}",
    "{size} number {digit} {verb} {direction}",
    "the digit {digit} goes {direction} {speed}",
    "a {size} {digit} {direction}",
)


def _digit_word(rng: np.random.Generator, digit: int) -> str:
    return str(digit) if rng.random() < 0.5 else _DIGIT_WORDS[digit]


def moving_digit_captions(
    class_name: str, *, speed: int, digit_fraction: float, num_captions: int, seed: int
) -> list[str]:
    """``num_captions`` paraphrases of one moving-digits video from a seeded generator.

    ``class_name`` is ``"<digit>_<direction>"`` (``classes.json``). Every caption names the
    digit (figure or word) and the direction (one of several phrasings); speed words ("slowly",
    "quickly") follow the set's pixels per frame and size words ("small", "large") the digit's
    share of the canvas: both are the same for every video of a set, so they paraphrase but do
    not discriminate."""
    digit_text, direction = class_name.split("_", 1)
    if direction not in _DIRECTION_WORDS:
        raise ValueError(f"captions cover {sorted(_DIRECTION_WORDS)}, not {direction!r}")
    rng = np.random.default_rng(seed)
    speed_words = ("quickly", "fast", "rapidly") if speed >= 3 else ("slowly", "steadily", "gently")
    size_words = ("large", "big", "huge") if digit_fraction > 0.5 else ("small", "little", "tiny")
    out = []
    for _ in range(num_captions):
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        out.append(
            template.format(
                digit=_digit_word(rng, int(digit_text)),
                direction=_DIRECTION_WORDS[direction][int(rng.integers(4))],
                verb=_VERBS[int(rng.integers(len(_VERBS)))],
                speed=speed_words[int(rng.integers(3))],
                size=size_words[int(rng.integers(3))],
            )
        )
    return out


# -- tokenizer ---------------------------------------------------------------------------------


def train_wordpiece_tokenizer(texts: Sequence[str], vocab_size: int = 256, max_length: int = 32):
    """A BERT-style (lower-cased WordPiece) tokenizer trained on ``texts`` with the ``tokenizers``
    library, wrapped as a ``transformers.PreTrainedTokenizerFast``; works offline."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(
        list(texts), WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length,
    )  # fmt: skip


def load_tokenizer(path: str):
    """A saved tokenizer (``save_pretrained`` folder, or a BERT checkpoint's) via AutoTokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


class TokenizingCollate:
    """``[(clip, caption, label), ...]`` -> ``(clips, input_ids, attention_mask, labels)``.

    Captions are padded to the batch's longest and cut at ``max_length`` tokens. A class (not a
    closure) so that DataLoader workers can pickle it."""

    def __init__(self, tokenizer: Any, max_length: int = 32) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, items: Sequence[tuple[Any, str, int]]) -> tuple[torch.Tensor, ...]:
        clips = torch.stack([torch.as_tensor(c) for c, _, _ in items])
        enc = self.tokenizer(
            [t for _, t, _ in items], padding=True, truncation=True, max_length=self.max_length,
            return_tensors="pt",
        )  # fmt: skip
        labels = torch.tensor([int(y) for _, _, y in items], dtype=torch.long)
        return clips, enc["input_ids"], enc["attention_mask"], labels


class CaptionedDigits(Dataset):
    """Moving-digits clips with captions: items ``(clip, caption, label)``.

    ``videos`` is a :class:`paperzoo.data.synthetic.DecodedVideos` (its items ``(clip, label,
    index)``); ``captions[i]`` the paraphrases of video i; a random one per item (training)
    or the first (``caption_mode="first"``)."""

    def __init__(
        self, videos: Any, captions: Sequence[Sequence[str]], caption_mode: str = "random"
    ):
        if len(captions) != videos.num_videos:
            raise ValueError(f"{videos.num_videos} videos but {len(captions)} caption lists")
        self.videos, self.captions, self.caption_mode = videos, captions, caption_mode

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str, int]:
        clip, label, video = self.videos[index]
        texts = self.captions[video]
        if self.caption_mode == "first":
            return clip, texts[0], label
        return clip, texts[int(torch.randint(len(texts), ()).item())], label

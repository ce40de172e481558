"""Video (and paired) datasets in the community's file formats.

- :class:`LabeledVideoDataset`: videos + labels with a clip sampler, multi-view test sampling,
  and skip-and-count of bad files. :func:`kinetics_lists` finds a Kinetics-style folder's
  lists (``train.csv``, ``val.csv``) with errors that say what to pass. Readers feed it:
  - :func:`read_kinetics_csv`: Kinetics-style ``path label`` (space) or ``path,start,end,label``
    (pytorchvideo / SlowFast lists);
  - :func:`read_ssv2`: Something-Something v2 ``labels.json`` + ``train/validation.json``;
  - :func:`read_ucf101_split`: UCF-101 ``trainlist0N.txt`` / ``testlist0N.txt`` + ``classInd.txt``;
  - :func:`read_hmdb51_split`: HMDB-51 ``<class>_test_split<N>.txt`` files (1 train, 2 test).
  - :func:`read_audioset_csv`: AudioSet segment lists (``balanced_train_segments.csv``, ...) +
    ``class_labels_indices.csv``, multi-label;
  - :func:`read_vggsound_csv`: VGGSound's ``vggsound.csv`` (``ytid,start,label,split``).
- :class:`CharadesFrameDataset`: SlowFast's Charades frame lists (JPEG frames, multi-label).
- :class:`AVAKeyframeDataset`: AVA boxes CSV (``video,sec,x1,y1,x2,y2,action,person``) at
  keyframes, clips centred on them.
- :class:`VideoTextDataset`: paired video-text, MSR-VTT ``videodatainfo.json`` style.
- :class:`ImageTextDataset`: image-text pairs from JSONL (``{"image": ..., "caption": ...}``).

Every dataset takes ``max_bad_fraction``: unreadable files are skipped (the next good one
takes their place), logged and counted per epoch in ``self.skipped`` (call
``self.skipped.reset()`` when an epoch starts); past the limit an error names the files.
A DataLoader worker that dies outright is named by :func:`paperzoo.data.iter_reporting_crashes`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from paperzoo.data._robust import CurrentFileMarker, SkipCounter
from paperzoo.data.samplers import Clip, ClipSampler, FullVideoSampler, multi_view_index
from paperzoo.data.transforms import uniform_crop
from paperzoo.data.video import DecodeError, VideoReader

__all__ = [
    "AVAKeyframeDataset",
    "CharadesFrameDataset",
    "ImageTextDataset",
    "LabeledVideoDataset",
    "VideoRecord",
    "VideoTextDataset",
    "kinetics_clip_datasets",
    "kinetics_lists",
    "read_audioset_csv",
    "read_ava_boxes",
    "read_hmdb51_split",
    "read_kinetics_csv",
    "read_ssv2",
    "read_ucf101_split",
    "read_vggsound_csv",
]

log = logging.getLogger("paperzoo.data")

# Errors that mean "this sample's file is bad": skip it. Anything else is a bug and propagates
# (wrapped so it names the file).
_BAD_FILE_ERRORS = (DecodeError, FileNotFoundError, ValueError)


@dataclass
class VideoRecord:
    """One video (or one segment of it): ``path``, ``label`` (int, or a list of ints for
    multi-label), optional segment bounds in seconds, and any extra per-format fields."""

    path: str
    label: int | list[int]
    start_sec: float | None = None
    end_sec: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _require_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist")
    return p


def _resolve(path: str, root: Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else root / p)


def _labels_to_ids(raw: Sequence[str]) -> tuple[list[int], list[str]]:
    """Integer labels stay; class names map to their index among the sorted names."""
    try:
        ids = [int(x) for x in raw]
        return ids, [str(i) for i in range(max(ids) + 1)] if ids else []
    except ValueError:
        names = sorted(set(raw))
        index = {n: i for i, n in enumerate(names)}
        return [index[x] for x in raw], names


# -- readers ---------------------------------------------------------------------------------


def read_kinetics_csv(
    csv_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> tuple[list[VideoRecord], list[str]]:
    """Read a Kinetics-style video list. Each line is either ``path label`` (space separated,
    pytorchvideo/SlowFast) or ``path,label`` or ``path,start_sec,end_sec,label`` (commas).
    Blank lines and ``#`` comments are skipped; a header line (``path,...``) is allowed.
    Relative paths resolve against ``root`` (default: the CSV's folder). Labels are integers
    or class names (sorted names -> 0..K-1). Returns ``(records, class_names)``."""
    csv_path = _require_file(csv_path, "video list")
    base = Path(root) if root is not None else csv_path.parent
    rows: list[list[str]] = []
    for lineno, line in enumerate(csv_path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = next(csv.reader([line])) if "," in line else line.rsplit(None, 1)
        parts = [p.strip() for p in parts]
        if lineno == 1 and parts[0].lower() in ("path", "video", "filename", "file"):
            continue
        if len(parts) not in (2, 4):
            raise ValueError(
                f"{csv_path}:{lineno}: expected 'path label' or 'path,start,end,label', got {line!r}"
            )
        rows.append(parts)
    if not rows:
        raise ValueError(f"video list {str(csv_path)!r} has no entries")
    labels, classes = _labels_to_ids([r[-1] for r in rows])
    records = []
    for r, label in zip(rows, labels):
        start, end = (float(r[1]), float(r[2])) if len(r) == 4 else (None, None)
        if start is not None and end is not None and not end > start:
            raise ValueError(f"{csv_path}: segment of {r[0]} has end {end} <= start {start}")
        records.append(VideoRecord(_resolve(r[0], base), label, start, end))
    return records, classes


def kinetics_lists(
    root: str | os.PathLike[str] | None,
    splits: Sequence[str] = ("train", "val"),
    *,
    dataset: str = "Kinetics-400",
    recipe: str = "the paper recipe",
) -> tuple[Path, ...]:
    """The lists ``<root>/<split>.csv`` of a Kinetics-style folder, one per split, checked.

    Each list holds ``relative/video.mp4 label`` or ``path,start_sec,end_sec,label`` lines
    (:func:`read_kinetics_csv`), paths relative to ``root``. An empty ``root`` (no ``--data``
    given), a ``root`` that is not a folder, or a missing list raise :class:`FileNotFoundError`
    naming ``dataset``, the missing files and the flag to pass.
    """
    layout = (
        f"a folder holding {' and '.join(f'{s}.csv' for s in splits)} (Kinetics-style lists: "
        "'relative/video.mp4 label' or 'path,start,end,label' per line, paths relative to it)"
    )
    if root is None or not str(root):
        raise FileNotFoundError(
            f"{recipe} needs {dataset}: pass --data DIR (or --set data.root=DIR), DIR being "
            f"{layout}"
        )
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"data.root={str(root)!r} is not a folder; it must be {layout}")
    lists = tuple(base / f"{split}.csv" for split in splits)
    missing = [str(p) for p in lists if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"data.root={str(root)!r} lacks {', '.join(missing)}; it must be {layout}"
        )
    return lists


def read_ssv2(
    labels_json: str | os.PathLike[str],
    split_json: str | os.PathLike[str],
    video_root: str | os.PathLike[str],
    ext: str = ".webm",
) -> tuple[list[VideoRecord], list[str]]:
    """Something-Something v2: ``labels.json`` maps each template (without brackets) to its
    class id (a string), the split file lists ``{"id", "template", "label", "placeholders"}``;
    videos are ``video_root/<id><ext>``. Returns ``(records, class_names_by_id)``."""
    label_map = json.loads(_require_file(labels_json, "SSv2 labels file").read_text())
    items = json.loads(_require_file(split_json, "SSv2 split file").read_text())
    classes = [name for name, _ in sorted(label_map.items(), key=lambda kv: int(kv[1]))]
    records = []
    for item in items:
        template = item["template"].replace("[", "").replace("]", "")
        if template not in label_map:
            raise ValueError(
                f"{split_json}: template {template!r} of video {item['id']} not in {labels_json}"
            )
        records.append(
            VideoRecord(
                str(Path(video_root) / f"{item['id']}{ext}"),
                int(label_map[template]),
                extra={
                    "caption": item.get("label", ""),
                    "placeholders": item.get("placeholders", []),
                },
            )
        )
    return records, classes


def read_ucf101_split(
    split_file: str | os.PathLike[str],
    class_index_file: str | os.PathLike[str],
    video_root: str | os.PathLike[str],
) -> tuple[list[VideoRecord], list[str]]:
    """UCF-101: ``classInd.txt`` lines ``1 ApplyEyeMakeup``; ``trainlist0N.txt`` lines
    ``ApplyEyeMakeup/v_..._g08_c01.avi 1`` (1-based label); ``testlist0N.txt`` lines carry no
    label (it comes from the folder). Labels returned 0-based."""
    classes_by_id: dict[int, str] = {}
    for line in _require_file(class_index_file, "UCF-101 class index").read_text().split("\n"):
        if line.strip():
            idx, name = line.split()
            classes_by_id[int(idx)] = name
    classes = [classes_by_id[i] for i in sorted(classes_by_id)]
    index = {name: i for i, name in enumerate(classes)}
    records = []
    for line in _require_file(split_file, "UCF-101 split file").read_text().split("\n"):
        parts = line.split()
        if not parts:
            continue
        rel = parts[0]
        folder = rel.split("/")[0]
        if folder not in index:
            raise ValueError(
                f"{split_file}: class folder {folder!r} of {rel} not in {class_index_file}"
            )
        label = int(parts[1]) - 1 if len(parts) > 1 else index[folder]
        records.append(VideoRecord(str(Path(video_root) / rel), label))
    return records, classes


def read_hmdb51_split(
    splits_dir: str | os.PathLike[str],
    video_root: str | os.PathLike[str],
    split: int = 1,
    train: bool = True,
) -> tuple[list[VideoRecord], list[str]]:
    """HMDB-51: ``splits_dir/<class>_test_split<split>.txt`` lines ``<video>.avi <tag>`` with
    tag 1 = train, 2 = test, 0 = unused; videos are ``video_root/<class>/<video>``. Classes
    are the sorted class names found in the split files."""
    splits_dir = Path(splits_dir)
    if not splits_dir.is_dir():
        raise FileNotFoundError(f"HMDB-51 splits folder {str(splits_dir)!r} does not exist")
    suffix = f"_test_split{split}.txt"
    files = sorted(splits_dir.glob(f"*{suffix}"))
    if not files:
        raise ValueError(f"no '*{suffix}' files in {str(splits_dir)!r}")
    classes = [f.name[: -len(suffix)] for f in files]
    wanted = "1" if train else "2"
    records = []
    for label, (cls, f) in enumerate(zip(classes, files)):
        for line in f.read_text().split("\n"):
            parts = line.split()
            if len(parts) == 2 and parts[1] == wanted:
                records.append(VideoRecord(str(Path(video_root) / cls / parts[0]), label))
    return records, classes


def _existing(
    rows: Sequence[tuple[str, VideoRecord]], what: str, max_missing_fraction: float
) -> list[VideoRecord]:
    """The records whose file exists. Missing ones are counted and named in one log line; more
    than ``max_missing_fraction`` of them is an error (the wrong folder or file pattern)."""
    present = [rec for _, rec in rows if Path(rec.path).is_file()]
    missing = [ytid for ytid, rec in rows if not Path(rec.path).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        message = f"{what}: {len(missing)} of {len(rows)} listed videos are not on disk ({shown})"
        if len(missing) > max_missing_fraction * len(rows):
            example = rows[0][1].path
            raise FileNotFoundError(
                f"{message}; that is more than max_missing_fraction={max_missing_fraction}. Is "
                f"the video folder or the file-name pattern right? (the first would be {example!r})"
            )
        log.warning("%s; skipped", message)
    return present


def read_audioset_csv(
    segments_csv: str | os.PathLike[str],
    class_labels_csv: str | os.PathLike[str],
    video_root: str | os.PathLike[str],
    *,
    file_name: str = "{ytid}_{start_ms}.mp4",
    max_missing_fraction: float = 0.3,
) -> tuple[list[VideoRecord], list[str]]:
    """AudioSet: a segment list and the class index, as Google publishes them.

    ``segments_csv`` (``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``,
    ``eval_segments.csv``): ``#`` comment lines, then ``YTID, start_seconds, end_seconds,
    "/m/xxx,/m/yyy"``. ``class_labels_csv`` (``class_labels_indices.csv``): a header, then
    ``index,mid,display_name``. Each record is multi-label (a list of class indices), with the
    segment's bounds (``start_sec``/``end_sec`` relative to the downloaded clip: 0 and the
    segment's length, since downloads hold only the 10 s segment) and ``extra["ytid"]``.

    Downloaded files are found under ``video_root`` by ``file_name``, a format string with
    ``ytid``, ``start_ms``, ``end_ms`` (integers) and ``start`` / ``end`` (floats). Videos missing
    from disk are skipped and counted (YouTube takes videos down: a few percent is normal);
    beyond ``max_missing_fraction`` it is an error. Returns ``(records, class display names)``.
    """
    index = _require_file(class_labels_csv, "AudioSet class index")
    with open(index, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0][:2]] != ["index", "mid"]:
        raise ValueError(f"{index}: expected the header 'index,mid,display_name', got {rows[:1]}")
    mids, names = {}, []
    for row in rows[1:]:
        if row:
            mids[row[1].strip()] = int(row[0])
            names.append(row[2].strip())
    if sorted(mids.values()) != list(range(len(names))):
        raise ValueError(f"{index}: class indices must be 0..{len(names) - 1}, each once")
    segments = _require_file(segments_csv, "AudioSet segment list")
    root = Path(video_root)
    listed: list[tuple[str, VideoRecord]] = []
    with open(segments, newline="") as f:
        for lineno, row in enumerate(csv.reader(f, skipinitialspace=True), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(
                    f"{segments}:{lineno}: expected 'YTID, start, end, \"labels\"', got {row}"
                )
            ytid, start, end = row[0].strip(), float(row[1]), float(row[2])
            unknown = [m for m in row[3].split(",") if m.strip() not in mids]
            if unknown:
                raise ValueError(f"{segments}:{lineno}: labels {unknown} are not in {index}")
            labels = sorted({mids[m.strip()] for m in row[3].split(",")})
            name = file_name.format(
                ytid=ytid, start=start, end=end, start_ms=round(start * 1000),
                end_ms=round(end * 1000),
            )  # fmt: skip
            rec = VideoRecord(str(root / name), labels, 0.0, end - start, {"ytid": ytid})
            listed.append((ytid, rec))
    if not listed:
        raise ValueError(f"AudioSet segment list {str(segments)!r} has no entries")
    return _existing(listed, f"AudioSet {segments.name}", max_missing_fraction), names


def read_vggsound_csv(
    csv_path: str | os.PathLike[str],
    video_root: str | os.PathLike[str],
    split: str = "train",
    *,
    file_name: str = "{ytid}_{start:06d}.mp4",
    max_missing_fraction: float = 0.3,
) -> tuple[list[VideoRecord], list[str]]:
    """VGGSound: ``vggsound.csv`` rows ``ytid,start_seconds,label,split`` (no header; ``split``
    is ``train`` or ``test``). Classes are the sorted label names of the whole file (309 in the
    release), so train and test share the indices. Files are ``video_root / file_name`` with
    ``ytid`` and ``start`` (integer seconds): the official download's ``<ytid>_<start:06d>.mp4``.
    Missing videos are skipped and counted as for AudioSet. Returns ``(records, classes)``."""
    path = _require_file(csv_path, "VGGSound list")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    bad = [
        i + 1 for i, r in enumerate(rows) if len(r) != 4 or r[3].strip() not in ("train", "test")
    ]
    if bad:
        raise ValueError(f"{path}: lines {bad[:5]} are not 'ytid,start_seconds,label,train|test'")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    classes = sorted({r[2].strip() for r in rows})
    ids = {name: i for i, name in enumerate(classes)}
    root = Path(video_root)
    listed = []
    for ytid, start, label, row_split in (
        (r[0].strip(), int(r[1]), r[2].strip(), r[3].strip()) for r in rows
    ):
        if row_split == split:
            name = file_name.format(ytid=ytid, start=start)
            listed.append((ytid, VideoRecord(str(root / name), ids[label], extra={"ytid": ytid})))
    if not listed:
        raise ValueError(f"{path} lists no {split!r} videos")
    return _existing(listed, f"VGGSound {split}", max_missing_fraction), classes


# -- the labelled video dataset --------------------------------------------------------------


class LabeledVideoDataset(Dataset):
    """Labelled videos read as clips.

    ``records``: :class:`VideoRecord` list (or use :meth:`from_csv`). For each video the
    ``clip_sampler`` picks clips within its segment (the whole video when the record has no
    bounds); with ``num_crops > 1`` every clip is also cropped ``num_crops`` ways
    (:func:`~paperzoo.data.transforms.uniform_crop` of ``crop_size``, after ``transform``).
    The dataset has ``len(records) * clips_per_video * num_crops`` items, views of one video
    contiguous (:func:`~paperzoo.data.samplers.multi_view_index`).

    An item is ``(clip, label)`` (``(clip, label, video_index)`` with ``return_index``):
    ``clip`` is ``transform(video)`` where ``video`` is a uint8 ``tv_tensors.Video`` (T, C, H,
    W) of ``num_frames`` frames (all frames in the clip when None); without a transform it is
    float (C, T, H, W) in [0, 1]. Multi-label records give a float multi-hot label of
    ``num_classes``.

    Random clip draws use torch's RNG (seeded per DataLoader worker and epoch), so runs with a
    seeded generator repeat exactly.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        clip_sampler: ClipSampler | None = None,
        num_frames: int | None = None,
        transform: Callable[[Any], Any] | None = None,
        num_crops: int = 1,
        crop_size: int | None = None,
        num_classes: int | None = None,
        max_bad_fraction: float = 0.01,
        backend: str = "auto",
        return_index: bool = False,
        classes: Sequence[str] | None = None,
    ) -> None:
        if not records:
            raise ValueError("LabeledVideoDataset got no videos")
        if num_crops > 1 and crop_size is None:
            raise ValueError("num_crops > 1 needs crop_size")
        self.records = list(records)
        self.clip_sampler = clip_sampler or FullVideoSampler()
        self.num_frames = num_frames
        self.transform = transform
        self.num_crops = num_crops
        self.crop_size = crop_size
        self.num_classes = num_classes
        self.backend = backend
        self.return_index = return_index
        self.classes = list(classes) if classes is not None else None
        self.skipped = SkipCounter(f"{type(self).__name__}", len(self.records), max_bad_fraction)
        self.file_marker = CurrentFileMarker()
        self._known_bad: dict[int, str] = {}  # index -> why, per process
        self._clip_counts = self._count_clips()

    @classmethod
    def from_csv(
        cls,
        csv_path: str | os.PathLike[str],
        root: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> LabeledVideoDataset:
        """A dataset from a Kinetics-style list (:func:`read_kinetics_csv`)."""
        records, classes = read_kinetics_csv(csv_path, root)
        kwargs.setdefault("classes", classes)
        return cls(records, **kwargs)

    def _count_clips(self) -> list[int] | int:
        fixed = self.clip_sampler.fixed_count
        if fixed is not None:
            return fixed
        # Duration-dependent clip counts (UniformClipSampler): read every header once.
        counts = []
        for i, rec in enumerate(self.records):
            try:
                counts.append(len(self.clip_sampler(self._segment_duration(rec), random.Random(0))))
            except _BAD_FILE_ERRORS as exc:
                self._known_bad[i] = str(exc)
                log.warning("%s: %s", type(self).__name__, exc)
                counts.append(1)
        return counts

    def _segment_duration(self, rec: VideoRecord, reader: VideoReader | None = None) -> float:
        if rec.start_sec is not None and rec.end_sec is not None:
            return rec.end_sec - rec.start_sec
        if reader is not None:
            return reader.duration
        with VideoReader(rec.path, self.backend) as r:
            return r.duration

    def _index(self, index: int) -> tuple[int, int, int]:
        if isinstance(self._clip_counts, int):
            return multi_view_index(index, self._clip_counts, self.num_crops)
        view, crop = divmod(index, self.num_crops)
        for video, n in enumerate(self._clip_counts):
            if view < n:
                return video, view, crop
            view -= n
        raise IndexError(index)

    def __len__(self) -> int:
        n = (
            self._clip_counts * len(self.records)
            if isinstance(self._clip_counts, int)
            else sum(self._clip_counts)
        )
        return n * self.num_crops

    def _label(self, rec: VideoRecord) -> Any:
        if isinstance(rec.label, list):
            if self.num_classes is None:
                raise ValueError("multi-label records need num_classes")
            target = torch.zeros(self.num_classes)
            target[rec.label] = 1.0
            return target
        return rec.label

    def _clip(self, reader: VideoReader, rec: VideoRecord, clip_index: int) -> Clip:
        seed = int(torch.randint(0, 2**62, ()).item())  # follows torch's (per-worker) seed
        clips = self.clip_sampler(self._segment_duration(rec, reader), random.Random(seed))
        clip = clips[min(clip_index, len(clips) - 1)]
        offset = rec.start_sec or 0.0
        return Clip(clip.start_sec + offset, clip.end_sec + offset, clip.index, clip.count)

    def load_video(
        self, video_index: int, clip_index: int = 0, crop_index: int = 0
    ) -> tuple[Any, Any]:
        """Decode and transform one view; raises :class:`DecodeError` for a bad file."""
        rec = self.records[video_index]
        self.file_marker.mark(rec.path)
        with VideoReader(rec.path, self.backend) as reader:
            clip = self._clip(reader, rec, clip_index)
            frames, _ = reader.get_clip(clip.start_sec, clip.end_sec, self.num_frames)
        video = tv_tensors.Video(frames.permute(0, 3, 1, 2))  # (T, C, H, W) uint8
        if self.transform is not None:
            out = self.transform(video)
        else:
            out = video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).float().div_(255.0)
        if self.num_crops > 1:
            out = uniform_crop(out, self.crop_size, crop_index, self.num_crops)  # type: ignore[arg-type]
        return out, self._label(rec)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        video, clip_index, crop_index = self._index(index)
        n = len(self.records)
        for offset in range(n):
            v = (video + offset) % n
            if v in self._known_bad:
                if offset == 0:
                    self.skipped.record(self.records[v].path, self._known_bad[v])
                continue
            try:
                out, label = self.load_video(v, clip_index, crop_index)
            except _BAD_FILE_ERRORS as exc:
                self._known_bad[v] = getattr(exc, "reason", str(exc))
                if offset == 0:
                    self.skipped.record(self.records[v].path, self._known_bad[v])
                continue
            except Exception as exc:  # a bug or resource error: say which file it was on
                raise RuntimeError(f"error while loading {self.records[v].path}: {exc}") from exc
            return (out, label, v) if self.return_index else (out, label)
        raise RuntimeError(f"{type(self).__name__}: none of the {n} videos could be decoded")


# -- Charades (frame lists) ------------------------------------------------------------------


class CharadesFrameDataset(Dataset):
    """Charades as SlowFast reads it: a frame list CSV (space separated, header
    ``original_vido_id video_id frame_id path labels``) of JPEG frames, labels per frame as a
    comma-separated, possibly empty, quoted list of action ids.

    One item per video: a clip of ``num_frames`` frames taken every ``sampling_rate`` frames
    from a random start (training) or the centre (``train=False``), as uint8
    ``tv_tensors.Video`` through ``transform`` (float (C, T, H, W) in [0, 1] without one), and
    the multi-hot (``num_classes``,) union of the labels of the frames in the clip (SlowFast's
    ``aggregate_labels``).
    """

    def __init__(
        self,
        frame_list: str | os.PathLike[str],
        frame_root: str | os.PathLike[str],
        num_frames: int = 8,
        sampling_rate: int = 4,
        num_classes: int = 157,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        max_bad_fraction: float = 0.01,
    ) -> None:
        frame_list = _require_file(frame_list, "Charades frame list")
        root = Path(frame_root)
        videos: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
        with open(frame_list, newline="") as f:
            reader = csv.reader(f, delimiter=" ", quotechar='"')
            header = next(reader, None)
            if header is None or header[:4] != ["original_vido_id", "video_id", "frame_id", "path"]:
                raise ValueError(
                    f"{frame_list}: expected the header 'original_vido_id video_id frame_id path labels'"
                )
            for row in reader:
                if not row:
                    continue
                labels = [int(x) for x in row[4].split(",") if x] if len(row) > 4 else []
                videos[row[0]].append((str(root / row[3]), labels))
        if not videos:
            raise ValueError(f"Charades frame list {str(frame_list)!r} has no frames")
        self.video_ids = list(videos)
        self.frames = [videos[v] for v in self.video_ids]
        self.num_frames, self.sampling_rate = num_frames, sampling_rate
        self.num_classes, self.train, self.transform = num_classes, train, transform
        self.skipped = SkipCounter(type(self).__name__, len(self.video_ids), max_bad_fraction)
        self.file_marker = CurrentFileMarker()

    def __len__(self) -> int:
        return len(self.video_ids)

    def _frame_indices(self, n: int) -> list[int]:
        span = (self.num_frames - 1) * self.sampling_rate + 1
        if self.train:
            start = int(torch.randint(0, max(n - span, 0) + 1, ()).item())
        else:
            start = max(n - span, 0) // 2
        return [min(start + i * self.sampling_rate, n - 1) for i in range(self.num_frames)]

    def _load(self, index: int) -> tuple[Any, torch.Tensor]:
        from paperzoo.data.images import decode_image_file

        frames = self.frames[index]
        picks = self._frame_indices(len(frames))
        images = []
        for i in picks:
            self.file_marker.mark(frames[i][0])
            images.append(decode_image_file(frames[i][0]))
        video = tv_tensors.Video(torch.stack(images))
        target = torch.zeros(self.num_classes)
        for i in range(picks[0], picks[-1] + 1):
            for label in frames[i][1]:
                target[label] = 1.0
        out = (
            self.transform(video)
            if self.transform is not None
            else video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).float().div_(255.0)
        )
        return out, target

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        for offset in range(len(self)):
            i = (index + offset) % len(self)
            try:
                return self._load(i)
            except (ValueError, OSError, RuntimeError) as exc:
                if offset == 0:
                    self.skipped.record(self.video_ids[i], str(exc))
        raise RuntimeError("CharadesFrameDataset: no video could be read")


# -- AVA -------------------------------------------------------------------------------------


def read_ava_boxes(
    csv_path: str | os.PathLike[str],
) -> dict[tuple[str, int], list[tuple[list[float], list[int]]]]:
    """AVA boxes CSV: rows ``video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]`` with
    coordinates normalised to [0, 1] and 1-based action ids. Returns ``{(video_id, second):
    [(box xyxy, [action ids]), ...]}``, rows of one box (same coordinates) merged."""
    out: dict[tuple[str, int], dict[tuple[float, ...], list[int]]] = defaultdict(dict)
    with open(_require_file(csv_path, "AVA boxes CSV"), newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) < 7:
                raise ValueError(
                    f"{csv_path}:{lineno}: expected video,sec,x1,y1,x2,y2,action[,person]"
                )
            box = tuple(round(float(v), 3) for v in row[2:6])
            if not all(0.0 <= v <= 1.0 for v in box) or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(
                    f"{csv_path}:{lineno}: box {box} is not a normalised x1<x2, y1<y2 box"
                )
            actions = out[(row[0], int(float(row[1])))].setdefault(box, [])
            if row[6].strip():
                actions.append(int(row[6]))
    return {key: [(list(b), a) for b, a in boxes.items()] for key, boxes in out.items()}


class AVAKeyframeDataset(Dataset):
    """AVA-style spatio-temporal action detection: one item per annotated keyframe.

    The clip is ``clip_duration`` s centred on the keyframe second (``timestamp -
    time_offset`` in the video, AVA's videos start at 900 s -> ``time_offset=900`` for
    trimmed files), ``num_frames`` frames from ``video_root/<video_id><ext>``. An item is
    ``(clip, boxes, labels)``: clip as in :class:`LabeledVideoDataset`, boxes float (N, 4)
    normalised xyxy, labels multi-hot (N, num_classes) from the 1-based action ids.
    """

    def __init__(
        self,
        boxes_csv: str | os.PathLike[str],
        video_root: str | os.PathLike[str],
        clip_duration: float = 2.0,
        num_frames: int = 8,
        num_classes: int = 80,
        ext: str = ".mp4",
        time_offset: float = 0.0,
        transform: Callable[[Any], Any] | None = None,
        max_bad_fraction: float = 0.01,
        backend: str = "auto",
    ) -> None:
        annotations = read_ava_boxes(boxes_csv)
        if not annotations:
            raise ValueError(f"AVA boxes CSV {boxes_csv} has no boxes")
        self.keys = sorted(annotations)
        self.annotations = annotations
        self.video_root, self.ext = Path(video_root), ext
        self.clip_duration, self.num_frames = clip_duration, num_frames
        self.num_classes, self.time_offset = num_classes, time_offset
        self.transform, self.backend = transform, backend
        self.skipped = SkipCounter(type(self).__name__, len(self.keys), max_bad_fraction)
        self.file_marker = CurrentFileMarker()

    def __len__(self) -> int:
        return len(self.keys)

    def _load(self, index: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        video_id, second = self.keys[index]
        path = self.video_root / f"{video_id}{self.ext}"
        self.file_marker.mark(path)
        centre = second - self.time_offset
        start = max(centre - self.clip_duration / 2, 0.0)
        with VideoReader(path, self.backend) as reader:
            frames, _ = reader.get_clip(start, start + self.clip_duration, self.num_frames)
        video = tv_tensors.Video(frames.permute(0, 3, 1, 2))
        out = (
            self.transform(video)
            if self.transform is not None
            else video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).float().div_(255.0)
        )
        entries = self.annotations[self.keys[index]]
        boxes = torch.tensor([b for b, _ in entries], dtype=torch.float32)
        labels = torch.zeros(len(entries), self.num_classes)
        for row, (_, actions) in enumerate(entries):
            for a in actions:
                if not 1 <= a <= self.num_classes:
                    raise ValueError(
                        f"action id {a} outside 1..{self.num_classes} for {video_id}@{second}"
                    )
                labels[row, a - 1] = 1.0
        return out, boxes, labels

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        for offset in range(len(self)):
            i = (index + offset) % len(self)
            try:
                return self._load(i)
            except (DecodeError, FileNotFoundError) as exc:
                if offset == 0:
                    video_id, _ = self.keys[i]
                    self.skipped.record(
                        self.video_root / f"{video_id}{self.ext}", getattr(exc, "reason", str(exc))
                    )
        raise RuntimeError("AVAKeyframeDataset: no video could be decoded")


# -- paired video-text and image-text --------------------------------------------------------


class VideoTextDataset(Dataset):
    """Paired video-text in the MSR-VTT layout: a JSON with ``"videos"`` (``video_id``,
    ``split``) and ``"sentences"`` (``video_id``, ``caption``); videos are
    ``video_root/<video_id><ext>``. A plain JSON list ``[{"video": path, "caption": text}]``
    (or ``"captions": [...]``) also works.

    One item per video: ``(clip, caption)`` where the caption is a random one of the video's
    captions (``caption_mode="random"``, training) or the first (``"first"``, retrieval test);
    ``"all"`` returns the list. The clip is read like :class:`LabeledVideoDataset` does.
    """

    def __init__(
        self,
        json_path: str | os.PathLike[str],
        video_root: str | os.PathLike[str] | None = None,
        split: str | None = None,
        ext: str = ".mp4",
        clip_sampler: ClipSampler | None = None,
        num_frames: int | None = 8,
        transform: Callable[[Any], Any] | None = None,
        caption_mode: str = "random",
        max_bad_fraction: float = 0.01,
        backend: str = "auto",
    ) -> None:
        json_path = _require_file(json_path, "video-text JSON")
        root = Path(video_root) if video_root is not None else json_path.parent
        data = json.loads(json_path.read_text())
        captions: dict[str, list[str]] = defaultdict(list)
        paths: dict[str, str] = {}
        if isinstance(data, dict) and "sentences" in data:
            keep = {
                v["video_id"]
                for v in data.get("videos", [])
                if split is None or v.get("split") == split
            }
            for s in data["sentences"]:
                if s["video_id"] in keep or not data.get("videos"):
                    captions[s["video_id"]].append(s["caption"])
            for vid in captions:
                paths[vid] = str(root / f"{vid}{ext}")
        elif isinstance(data, list):
            for item in data:
                vid = item["video"]
                texts = item.get("captions") or [item["caption"]]
                captions[vid].extend(texts)
                paths[vid] = _resolve(vid, root)
        else:
            raise ValueError(
                f"{json_path}: expected MSR-VTT style {{videos, sentences}} or a list of pairs"
            )
        if not captions:
            raise ValueError(f"{json_path}: no video-caption pairs (split={split!r})")
        if caption_mode not in ("random", "first", "all"):
            raise ValueError(
                f"caption_mode must be 'random', 'first' or 'all', got {caption_mode!r}"
            )
        self.video_ids = sorted(captions)
        self.captions = [captions[v] for v in self.video_ids]
        self.caption_mode = caption_mode
        self.videos = LabeledVideoDataset(
            [VideoRecord(paths[v], i) for i, v in enumerate(self.video_ids)],
            clip_sampler=clip_sampler,
            num_frames=num_frames,
            transform=transform,
            max_bad_fraction=max_bad_fraction,
            backend=backend,
        )
        self.skipped = self.videos.skipped
        self.file_marker = self.videos.file_marker

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        clip, video_index = self.videos[index]  # label = video index; survives skipping
        texts = self.captions[video_index]
        if self.caption_mode == "all":
            return clip, list(texts)
        if self.caption_mode == "first":
            return clip, texts[0]
        return clip, texts[int(torch.randint(len(texts), ()).item())]


class ImageTextDataset(Dataset):
    """Image-text pairs from JSONL: one ``{"image": path, "caption": text}`` object per line
    (``"text"`` is accepted for the caption). Relative paths resolve against ``root`` (default:
    the file's folder). Items are ``(transform(image), caption)`` with ``image`` a uint8 RGB
    ``tv_tensors.Image`` (3, H, W); bad images are skipped and counted."""

    def __init__(
        self,
        jsonl_path: str | os.PathLike[str],
        root: str | os.PathLike[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        max_bad_fraction: float = 0.01,
    ) -> None:
        jsonl_path = _require_file(jsonl_path, "image-text JSONL")
        base = Path(root) if root is not None else jsonl_path.parent
        self.items: list[tuple[str, str]] = []
        for lineno, line in enumerate(jsonl_path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                text = obj["caption"] if "caption" in obj else obj["text"]
                self.items.append((_resolve(obj["image"], base), text))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(
                    f'{jsonl_path}:{lineno}: expected {{"image": path, "caption": text}}, got {line[:80]!r} ({exc})'
                ) from None
        if not self.items:
            raise ValueError(f"image-text JSONL {str(jsonl_path)!r} has no pairs")
        self.transform = transform
        self.skipped = SkipCounter(type(self).__name__, len(self.items), max_bad_fraction)
        self.file_marker = CurrentFileMarker()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, str]:
        from paperzoo.data.images import decode_image_file

        for offset in range(len(self.items)):
            i = (index + offset) % len(self.items)
            path, text = self.items[i]
            try:
                self.file_marker.mark(path)
                image = tv_tensors.Image(decode_image_file(path))
            except (ValueError, OSError, RuntimeError) as exc:
                if offset == 0:
                    self.skipped.record(path, str(exc))
                continue
            return (self.transform(image) if self.transform is not None else image), text
        raise RuntimeError("ImageTextDataset: no image could be decoded")


def kinetics_clip_datasets(
    root: str | os.PathLike[str] | None, video: Any, *, recipe: str = "this recipe"
) -> tuple[LabeledVideoDataset, LabeledVideoDataset]:
    """PySlowFast's Kinetics train and multi-view test sets from ``root``'s lists.

    ``video`` holds the clip settings (:class:`paperzoo.train.video_config.VideoClipConfig`
    or anything with its fields): training clips are random windows of ``num_frames *
    sampling_rate / fps`` seconds, scale-jittered, cropped and flipped; each test video gives
    ``num_ensemble_views`` evenly spaced clips x ``num_spatial_crops`` crops, items
    ``(clip, label, video_index)`` for :func:`paperzoo.train.classification.evaluate_multiview`.
    """
    from paperzoo.data.samplers import ConstantClipsPerVideoSampler, RandomClipSampler
    from paperzoo.data.transforms import video_eval_transform, video_train_transform

    train_csv, val_csv = kinetics_lists(root, recipe=recipe)
    v = video
    seconds = v.num_frames * v.sampling_rate / v.fps
    train = LabeledVideoDataset.from_csv(
        train_csv,
        clip_sampler=RandomClipSampler(seconds),
        num_frames=v.num_frames,
        transform=video_train_transform(
            v.num_frames, v.train_crop_size, *v.train_jitter_scales, mean=v.mean, std=v.std
        ),
        max_bad_fraction=v.max_bad_fraction,
    )
    test = LabeledVideoDataset.from_csv(
        val_csv,
        clip_sampler=ConstantClipsPerVideoSampler(seconds, v.num_ensemble_views),
        num_frames=v.num_frames,
        transform=video_eval_transform(
            v.num_frames, v.test_crop_size, v.test_short_side, mean=v.mean, std=v.std,
            center_crop=v.num_spatial_crops == 1,
        ),
        num_crops=v.num_spatial_crops,
        crop_size=v.test_crop_size if v.num_spatial_crops > 1 else None,
        max_bad_fraction=v.max_bad_fraction,
        return_index=True,
    )  # fmt: skip
    return train, test

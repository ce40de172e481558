"""Image-text pairs in webdataset tar shards: the layout img2dataset and DataComp write.

A shard is a plain tar file; the files of one sample share a key (``000123.jpg``,
``000123.txt``, ``000123.json``), split from the extension by webdataset's own rule
(``webdataset.tariterators.base_plus_ext``: the key ends at the first dot of the basename).
The image is the first of ``jpg``, ``png``, ``jpeg``, ``webp`` the sample has, and the caption
its ``txt`` (else the ``"caption"`` / ``"text"`` of its ``json``), as open_clip's training
pipeline renames them (``image="jpg;png;jpeg;webp", text="txt"``). Samples without an image or a
caption are dropped, and counted, as that pipeline's ``filter_no_caption_or_no_image`` does.

Two readers, both skipping and counting undecodable images (:class:`SkipCounter`, the same
bookkeeping as the image-folder and JSONL datasets):

- :class:`WebDatasetImageText`: map-style. The shards are indexed once (each member's offset
  and size, read from the tar headers with :mod:`tarfile`; with ``index_dir`` the index of each
  shard is kept in a small JSON file and reused), then any sample is one ``pread``. This is
  what :class:`paperzoo.train.Trainer` needs: a length, a distributed sampler, and exact resume.
  Shards must be uncompressed (``.tar``), as img2dataset writes them by default.
- :func:`image_text_webdataset`: webdataset's streaming ``WebDataset`` pipeline (shards split
  by node and by worker, optional shard and sample shuffling), for loops that stream shards
  without an index. Its length is unknown, so the Trainer cannot take it.

Needs the ``webdataset`` extra: ``pip install "paperzoo-data[webdataset]"``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tarfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from paperzoo.data._robust import CurrentFileMarker, SkipCounter

__all__ = [
    "IMAGE_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "WebDatasetImageText",
    "decode_image_bytes",
    "expand_shards",
    "image_text_webdataset",
    "index_shard",
]

log = logging.getLogger("paperzoo.data")

IMAGE_EXTENSIONS = ("jpg", "png", "jpeg", "webp")  # preference order, as open_clip renames
TEXT_EXTENSIONS = ("txt",)
_INDEX_VERSION = 1
_MAX_OPEN_SHARDS = 64
_INSTALL_HINT = (
    'the webdataset reader needs the webdataset extra: pip install "paperzoo-data[webdataset]"'
)


def _wds() -> Any:
    try:
        import webdataset
    except ImportError as exc:  # pragma: no cover - the extra is part of the test group
        raise ImportError(_INSTALL_HINT) from exc
    return webdataset


def expand_shards(spec: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The shard files of ``spec``, in order.

    ``spec``: a folder (its ``*.tar`` files, sorted), a brace pattern
    (``/data/{00000..00127}.tar``, expanded by webdataset), a glob (``/data/*.tar``), one file,
    a ``::``-separated list of these, or a sequence of them. Raises ``FileNotFoundError``
    naming what matched nothing.
    """
    import glob

    if isinstance(spec, (str, os.PathLike)):
        parts = [p for p in os.fspath(spec).split("::") if p.strip()]
    else:
        parts = [os.fspath(p) for p in spec]
    if not parts:
        raise FileNotFoundError("no webdataset shards given: pass a folder, a pattern or files")
    out: list[str] = []
    for part in parts:
        path = Path(part).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.tar"))
            if not found:
                raise FileNotFoundError(f"{str(path)!r} holds no *.tar shards")
            out.extend(found)
            continue
        expanded = _wds().shardlists.expand_urls(str(path)) if "{" in part else [str(path)]
        for item in expanded:
            matches = sorted(glob.glob(item)) if any(c in item for c in "*?[") else [item]
            missing = [m for m in matches if not Path(m).is_file()]
            if not matches or missing:
                raise FileNotFoundError(
                    f"webdataset shard {item!r} does not exist"
                    + (f" (from {part!r})" if item != part else "")
                )
            out.extend(matches)
    return out


# -- indexing --------------------------------------------------------------------------------------


def _scan(path: str) -> tuple[dict[str, dict[str, tuple[int, int]]], str | None]:
    """key -> {extension: (offset, size)} of a tar's regular files, and an error if it broke off."""
    base_plus_ext = _wds().tariterators.base_plus_ext
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    error = None
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = base_plus_ext(member.name)
                if key is None or ext is None or os.path.basename(member.name).startswith("."):
                    continue  # webdataset skips names without an extension and hidden files
                samples.setdefault(key, {})[ext.lower()] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError, EOFError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return samples, error


def index_shard(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The index of one shard: ``{"samples": [[key, image_ext, offset, size, text_ext,
    offset, size], ...], "incomplete": n, "error": str | None}``.

    A sample needs an image (``IMAGE_EXTENSIONS``) and a caption (``txt``, or a ``json`` that is
    read at load time); others count as ``incomplete``. A shard that is cut short keeps the
    samples before the break and reports the ``error``.
    """
    path = os.fspath(path)
    if path.endswith((".gz", ".tgz", ".bz2", ".xz", ".zst")):
        raise ValueError(
            f"{path}: compressed shards cannot be read by offset; recompress them as plain .tar "
            "(img2dataset's default) or stream them with image_text_webdataset()"
        )
    members, error = _scan(path)
    samples, incomplete = [], 0
    for key, files in members.items():
        image = next((e for e in IMAGE_EXTENSIONS if e in files), None)
        text = next((e for e in (*TEXT_EXTENSIONS, "json") if e in files), None)
        if image is None or text is None:
            incomplete += 1
            continue
        samples.append([key, image, *files[image], text, *files[text]])
    return {"version": _INDEX_VERSION, "samples": samples, "incomplete": incomplete, "error": error}


def _cached_index(path: str, index_dir: Path | None) -> dict[str, Any]:
    if index_dir is None:
        return index_shard(path)
    stat = os.stat(path)
    ident = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{_INDEX_VERSION}"
    cache = index_dir / f"{Path(path).stem}.{hashlib.sha1(ident.encode()).hexdigest()[:16]}.json"
    try:
        return json.loads(cache.read_text())
    except (OSError, json.JSONDecodeError):
        pass
    index = index_shard(path)
    if index["error"] is None:  # a broken shard is indexed again next time, in case it was fixed
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index))
        os.replace(tmp, cache)  # atomic: ranks indexing the same shard write the same content
    return index


# -- decoding ----------------------------------------------------------------------------------------


def decode_image_bytes(data: bytes, name: str = "image") -> torch.Tensor:
    """Encoded image bytes (any format Pillow reads) -> uint8 RGB (3, H, W).

    Raises ``ValueError`` naming ``name`` when the bytes are empty or cannot be decoded.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ValueError(f"{name}: empty image (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            array = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{name}: cannot decode image ({exc})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _caption(data: bytes, ext: str, name: str) -> str:
    text = data.decode("utf-8")
    if ext != "json":
        return text.strip()
    try:
        obj = json.loads(text)
        return str(obj["caption"] if "caption" in obj else obj["text"]).strip()
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"{name}: json has no 'caption' or 'text'") from None


class WebDatasetImageText(Dataset):
    """Map-style image-text pairs from webdataset shards; items ``(transform(image), caption)``.

    ``image`` is a uint8 RGB ``tv_tensors.Image`` (3, H, W), ``caption`` a ``str``. An image that
    cannot be decoded is skipped (the next sample is returned in its place) and counted in
    ``skipped``; past ``max_bad_fraction`` of the samples in one epoch that is a
    :class:`~paperzoo.data.TooManyBadFilesError` naming them. ``incomplete`` counts samples
    dropped at indexing for lack of an image or a caption, ``broken_shards`` the shards that
    ended early.

    Args:
        shards: anything :func:`expand_shards` takes.
        transform: applied to the image tensor.
        max_bad_fraction: see above.
        index_dir: keep each shard's index here and reuse it (keyed by path, size and mtime).
        index_workers: threads that index shards in parallel (I/O bound).
    """

    def __init__(
        self,
        shards: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        transform: Callable[[Any], Any] | None = None,
        *,
        max_bad_fraction: float = 0.01,
        index_dir: str | os.PathLike[str] | None = None,
        index_workers: int = 8,
    ) -> None:
        self.shards = expand_shards(shards)
        cache = Path(index_dir).expanduser() if index_dir is not None else None
        workers = max(1, min(index_workers, len(self.shards)))
        with ThreadPoolExecutor(workers) as pool:
            indices = list(pool.map(lambda p: _cached_index(p, cache), self.shards))
        rows: list[tuple[int, int, int, int, int, str, str]] = []
        self.keys: list[str] = []
        self.incomplete = 0
        self.broken_shards: list[str] = []
        for shard_id, (path, index) in enumerate(zip(self.shards, indices)):
            self.incomplete += int(index["incomplete"])
            if index["error"]:
                self.broken_shards.append(path)
                log.warning("WebDatasetImageText: %s ends early (%s); kept %d samples before it",
                            path, index["error"], len(index["samples"]))  # fmt: skip
            for key, iext, ioff, isize, text_ext, toff, tsize in index["samples"]:
                rows.append((shard_id, ioff, isize, toff, tsize, iext, text_ext))
                self.keys.append(key)
        if self.incomplete:
            log.warning("WebDatasetImageText: dropped %d samples without an image or a caption",
                        self.incomplete)  # fmt: skip
        if not rows:
            raise ValueError(
                f"no image-text samples in {len(self.shards)} shard(s) ({self.shards[0]}, ...): "
                f"each sample needs one of .{', .'.join(IMAGE_EXTENSIONS)} and a .txt caption"
            )
        # Compact arrays (a DataComp-sized index would not fit as Python tuples).
        self._where = np.array([r[:5] for r in rows], dtype=np.int64)
        self._image_ext = np.array([IMAGE_EXTENSIONS.index(r[5]) for r in rows], dtype=np.int8)
        self._text_json = np.array([r[6] == "json" for r in rows], dtype=bool)
        self.transform = transform
        self.skipped = SkipCounter(type(self).__name__, len(rows), max_bad_fraction)
        self.file_marker = CurrentFileMarker()
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._fd_pid = -1

    def __len__(self) -> int:
        return len(self._where)

    def _read(self, shard_id: int, offset: int, size: int) -> bytes:
        if self._fd_pid != os.getpid():  # a forked worker must not share the parent's fds
            self._fds, self._fd_pid = OrderedDict(), os.getpid()
        fd = self._fds.get(shard_id)
        if fd is None:
            if len(self._fds) >= _MAX_OPEN_SHARDS:
                os.close(self._fds.popitem(last=False)[1])
            fd = os.open(self.shards[shard_id], os.O_RDONLY)
            self._fds[shard_id] = fd
        else:
            self._fds.move_to_end(shard_id)
        data = os.pread(fd, size, offset)
        if len(data) != size:
            raise ValueError(f"{self.shards[shard_id]}: short read at byte {offset}")
        return data

    def name(self, index: int) -> str:
        """``shard.tar:key``, how errors and skip reports name sample ``index``."""
        return f"{self.shards[int(self._where[index, 0])]}:{self.keys[index]}"

    def caption(self, index: int) -> str:
        """Sample ``index``'s caption, without decoding its image."""
        shard, _, _, toff, tsize = (int(v) for v in self._where[index])
        ext = "json" if self._text_json[index] else "txt"
        return _caption(self._read(shard, toff, tsize), ext, self.name(index))

    def _load(self, index: int) -> tuple[torch.Tensor, str]:
        shard, ioff, isize, toff, tsize = (int(v) for v in self._where[index])
        name = self.name(index)
        image = decode_image_bytes(self._read(shard, ioff, isize), name)
        ext = "json" if self._text_json[index] else "txt"
        return image, _caption(self._read(shard, toff, tsize), ext, name)

    def __getitem__(self, index: int) -> tuple[Any, str]:
        n = len(self)
        for offset in range(n):
            i = (index + offset) % n
            name = self.name(i)
            try:
                self.file_marker.mark(name)
                image, text = self._load(i)
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                if offset == 0:
                    self.skipped.record(name, str(exc).removeprefix(f"{name}: "))
                continue
            image = tv_tensors.Image(image)
            return (self.transform(image) if self.transform is not None else image), text
        raise RuntimeError("WebDatasetImageText: no sample could be decoded")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fds"], state["_fd_pid"] = OrderedDict(), -1  # fds do not survive pickling (spawn)
        return state

    def __del__(self) -> None:
        if getattr(self, "_fd_pid", -1) == os.getpid():
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)


# -- streaming ---------------------------------------------------------------------------------------


def image_text_webdataset(
    shards: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    transform: Callable[[Any], Any] | None = None,
    *,
    shuffle_shards: bool = True,
    shuffle_buffer: int = 0,
    seed: int = 0,
    num_samples: int | None = None,
    max_bad_fraction: float = 0.01,
) -> Any:
    """webdataset's streaming pipeline over ``shards``, yielding ``(transform(image), caption)``.

    Shards are split by node (torch.distributed rank) and by DataLoader worker;
    ``shuffle_shards`` reorders them per epoch (seeded), ``shuffle_buffer > 0`` shuffles samples
    in a buffer of that size. Undecodable images and samples without an image or a caption are
    skipped; the images are counted in the returned dataset's ``skipped``
    (:class:`SkipCounter`, shared by its workers). ``num_samples`` (the expected length) sets
    the ``max_bad_fraction`` limit; without it bad images are counted and logged but never stop
    the stream. A tar that breaks off is logged and the stream goes on with the next shard.
    """
    wds = _wds()
    urls = expand_shards(shards)
    size = num_samples if num_samples is not None else sys.maxsize // 2
    skipped = SkipCounter("image_text_webdataset", size, max_bad_fraction if num_samples else 1.0)

    def decode(sample: dict[str, Any]) -> tuple[Any, str] | None:
        name = f"{sample.get('__url__', '?')}:{sample.get('__key__', '?')}"
        image_ext = next((e for e in IMAGE_EXTENSIONS if e in sample), None)
        text_ext = next((e for e in (*TEXT_EXTENSIONS, "json") if e in sample), None)
        if image_ext is None or text_ext is None:
            return None
        try:
            image = decode_image_bytes(sample[image_ext], name)
            text = _caption(sample[text_ext], text_ext, name)
        except (ValueError, UnicodeDecodeError) as exc:
            skipped.record(name, str(exc).removeprefix(f"{name}: "))
            return None
        image = tv_tensors.Image(image)
        return (transform(image) if transform is not None else image), text

    dataset = wds.WebDataset(
        urls,
        shardshuffle=len(urls) if shuffle_shards else False,
        detshuffle=True,
        seed=seed,
        nodesplitter=wds.split_by_node,
        workersplitter=wds.split_by_worker,
        handler=wds.warn_and_continue,
        empty_check=False,
    )
    if shuffle_buffer > 0:
        dataset = dataset.shuffle(shuffle_buffer)
    dataset = dataset.map(decode).select(lambda item: item is not None)
    dataset.skipped = skipped
    return dataset

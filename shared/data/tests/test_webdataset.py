"""webdataset shards: real tar files written with webdataset's TarWriter, read back by both
readers, with one corrupt image skipped and counted, a sample without a caption dropped, and a
shard cut short."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

wds = pytest.importorskip("webdataset")

from paperzoo.data import TooManyBadFilesError  # noqa: E402
from paperzoo.data.webdataset import (  # noqa: E402
    WebDatasetImageText,
    expand_shards,
    image_text_webdataset,
    index_shard,
)


def _encoded(value: int, fmt: str) -> bytes:
    from PIL import Image

    pixels = np.zeros((6, 9, 3), np.uint8)
    pixels[..., 0] = value  # the red channel carries the sample's id
    pixels[..., 1] = 255 - value
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _write_shards(root, corrupt=True):
    """Two shards of 4 samples; shard 1 holds a corrupt jpg and a sample with no caption."""
    root.mkdir(exist_ok=True)
    expected = {}
    for s in range(2):
        with wds.TarWriter(str(root / f"part-{s:05d}.tar")) as sink:
            for i in range(4):
                key, value = f"{s}{i:04d}", 20 * (4 * s + i)
                if corrupt and (s, i) == (1, 1):
                    sink.write(
                        {"__key__": key, "jpg": b"\xff\xd8\xff not really a jpeg", "txt": "bad"}
                    )
                elif (s, i) == (1, 2):
                    sink.write({"__key__": key, "png": _encoded(value, "PNG")})  # no caption
                elif (s, i) == (0, 3):  # caption in a json only, image as jpeg
                    meta = json.dumps({"caption": f"json caption {value}"})
                    sink.write({"__key__": key, "jpeg": _encoded(value, "JPEG"), "json": meta})
                else:
                    text = f"a caption for {value}"
                    sink.write({"__key__": key, "png": _encoded(value, "PNG"), "txt": text,
                                "json": json.dumps({"caption": "not this one"})})  # fmt: skip
                    expected[key] = (value, text)
    return expected


def test_map_style_reads_every_sample_back_and_skips_the_corrupt_image(tmp_path):
    root = tmp_path / "shards"
    expected = _write_shards(root)
    ds = WebDatasetImageText(root, max_bad_fraction=0.5)
    # 8 samples written, 1 without caption dropped at indexing, the corrupt one is indexed.
    assert len(ds) == 7 and ds.incomplete == 1 and not ds.broken_shards
    items = [ds[i] for i in range(len(ds))]
    assert ds.skipped.count == 1
    by_caption = {text: image for image, text in items}
    for value, text in expected.values():
        image = by_caption[text]
        assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 6, 9)
        assert int(image[0, 0, 0]) == value and int(image[1, 0, 0]) == 255 - value
    assert "json caption 60" in by_caption  # the json caption when there is no .txt
    # The corrupt sample's place is taken by the next sample.
    bad = ds.keys.index("10001")
    assert items[bad][1] == items[bad + 1][1]
    # Over the limit, the error names the bad sample.
    strict = WebDatasetImageText(root, max_bad_fraction=0.0)
    with pytest.raises(TooManyBadFilesError, match=r"part-00001\.tar:10001"):
        strict[strict.keys.index("10001")]


def test_transform_workers_and_the_index_cache(tmp_path):
    root = tmp_path / "shards"
    _write_shards(root, corrupt=False)
    cache = tmp_path / "index"
    ds = WebDatasetImageText(
        str(root / "part-{00000..00001}.tar"),
        transform=lambda im: im.float() / 255,
        index_dir=cache,
    )
    assert len(list(cache.glob("*.json"))) == 2
    image, _ = ds[0]
    assert image.dtype == torch.float32 and float(image.max()) <= 1.0
    # The cached index is read back instead of the tar headers: same samples.
    again = WebDatasetImageText(root, index_dir=cache)
    assert again.keys == ds.keys and np.array_equal(again._where, ds._where)
    # DataLoader workers (forked) read the same items.
    loader = torch.utils.data.DataLoader(again, batch_size=2, num_workers=2)
    captions = [t for _, texts in loader for t in texts]
    assert captions == [again.caption(i) for i in range(len(again))]


def test_a_shard_cut_short_keeps_its_first_samples(tmp_path):
    root = tmp_path / "shards"
    _write_shards(root, corrupt=False)
    path = root / "part-00001.tar"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])  # cut inside a later member
    index = index_shard(path)
    assert index["error"] is not None and 0 < len(index["samples"]) < 3
    ds = WebDatasetImageText(root)
    assert ds.broken_shards == [str(path)] and len(ds) == 4 + len(index["samples"])


def test_streaming_pipeline_skips_and_counts(tmp_path):
    root = tmp_path / "shards"
    expected = _write_shards(root)
    stream = image_text_webdataset(root, shuffle_shards=False, num_samples=8, max_bad_fraction=0.5)
    items = list(stream)
    assert sorted(t for _, t in items) == sorted(
        [t for _, t in expected.values()] + ["json caption 60"]
    )
    assert stream.skipped.count == 1
    value, text = next(iter(expected.values()))
    image = dict((t, im) for im, t in items)[text]
    assert int(image[0, 0, 0]) == value
    # Shuffled shards: the same samples, in a seeded order.
    a = [t for _, t in image_text_webdataset(root, shuffle_buffer=4, seed=3)]
    assert sorted(a) == sorted(t for _, t in items)
    # With a bounded tolerance, the corrupt image stops the stream with its name.
    strict = image_text_webdataset(root, shuffle_shards=False, num_samples=8, max_bad_fraction=0.0)
    with pytest.raises(TooManyBadFilesError, match="10001"):
        list(strict)


def test_expand_shards_errors_name_what_is_missing(tmp_path):
    root = tmp_path / "shards"
    _write_shards(root, corrupt=False)
    assert expand_shards(f"{root}/*.tar") == expand_shards(root)
    assert len(expand_shards([root / "part-00000.tar", root / "part-00001.tar"])) == 2
    with pytest.raises(FileNotFoundError, match="part-00002"):
        expand_shards(str(root / "part-{00000..00002}.tar"))
    with pytest.raises(FileNotFoundError, match="no"):
        expand_shards(tmp_path / "empty_dir_that_is_not_there" / "*.tar")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \*\.tar"):
        expand_shards(tmp_path / "empty")
    with pytest.raises(ValueError, match="compressed"):
        index_shard(tmp_path / "x.tar.gz")

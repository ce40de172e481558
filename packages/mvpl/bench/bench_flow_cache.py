"""Clips/s of building MvPL's flow view with a cold vs a warm flow cache.

Writes moving-digit mp4 files (clutter background), then builds one training clip's flow view
per video, ``SemiSupervisedClips``-style (the cached whole-video flow, sliced at the sampled
frames): first with an empty cache (decode + Farneback + write), then again with the cache
filled (read from disk). One process, one thread. Run:

    python packages/mvpl/bench/bench_flow_cache.py [--videos 48] [--size 64] [--frames 16]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from paperzoo.data.datasets import read_kinetics_csv
from paperzoo.data.synthetic import write_moving_digits
from paperzoo.mvpl.views import FlowCache, FlowSettings


def _flow_clip(cache: FlowCache, path: str, num_frames: int, stride: int) -> torch.Tensor:
    flow = cache.get(path)
    start = 0
    idx = np.arange(num_frames) * stride + start
    return torch.from_numpy(np.ascontiguousarray(flow[idx])).permute(3, 0, 1, 2)


def _pass(cache: FlowCache, paths: list[str], num_frames: int, stride: int) -> float:
    t0 = time.perf_counter()
    for p in paths:
        _flow_clip(cache, p, num_frames, stride)
    return len(paths) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=48, help="videos (a multiple of 12)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16, help="frames per video")
    parser.add_argument("--clip-frames", type=int, default=4)
    parser.add_argument("--stride", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = write_moving_digits(
            root / "videos", num_videos_per_class=max(1, args.videos // 12), digits=(0, 1, 2),
            size=args.size, num_frames=args.frames, val_fraction=0.0, background="clutter",
        )  # fmt: skip
        paths = [r.path for r in read_kinetics_csv(csv)[0]]
        settings = FlowSettings(frame_gap=args.stride)
        cache = FlowCache(root / "cache", settings)
        cold = _pass(cache, paths, args.clip_frames, args.stride)
        computed = cache.stats.computed
        warm = _pass(cache, paths, args.clip_frames, args.stride)
        result = {
            "videos": len(paths), "size": args.size, "frames": args.frames,
            "flow": f"farneback gap {args.stride}", "cold_clips_per_s": round(cold, 1),
            "warm_clips_per_s": round(warm, 1), "speedup": round(warm / cold, 1),
            "computed": computed, "hits": cache.stats.hits,
            "cache_bytes": sum(f.stat().st_size for f in (root / "cache").rglob("*.npy")),
        }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()

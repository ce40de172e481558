"""Synthetic 3D scenes and depth questions for the tiny study (our construction, not the paper's).

A scene is 3-4 coloured boxes of random sizes standing on a ground plane, seen by a camera of
random height and heading (:mod:`paperzoo.omni.render`). A question names two visible boxes by
colour and asks which one is nearer to the camera; the answer is a colour word. (Mixing in
"farther" questions is supported, ``kinds=("nearer", "farther")``; the tiny model did not learn
that XOR-like flip within the tiny budget even with the oracle depth, so the study asks
"nearer" only.)

Why the answer needs depth: box sizes vary (0.35 to 1.6 units), and each split is balanced so that
in half of its questions the nearer box covers *fewer* pixels than the farther one (the
``size_agrees`` flag), so "the bigger one is nearer" scores 50%. The image still carries the
monocular cues a depth estimator uses (ground contact height, perspective, occlusion).

Splits are disjoint by seed: scene ``i`` of split ``s`` is drawn from
``np.random.default_rng([data_seed, SPLIT_CODE[s], i])``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from paperzoo.omni.render import Box, Camera, look_at, render

__all__ = [
    "COLORS",
    "SPLIT_CODE",
    "VOCAB",
    "SceneQA",
    "ViewQA",
    "behind_question_set",
    "depth_question_set",
    "encode_text",
    "random_scene",
    "token_id",
]

# name -> RGB; distinct under the renderer's shading
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.15),
    "blue": (0.15, 0.25, 0.95),
    "yellow": (0.95, 0.9, 0.1),
    "purple": (0.6, 0.15, 0.8),
    "white": (1.0, 1.0, 1.0),
}
SPECIAL = ("<pad>", "<q>", "<ans>", "<depth>", "<view>", "<fill>")
# "behind" comes last, so the depth questions' 17 ids (and ``omni_tiny``'s vocabulary) are
# unchanged by the view questions
VOCAB: tuple[str, ...] = (*SPECIAL, "which", "is", "nearer", "farther", "or", *COLORS, "behind")
_INDEX = {w: i for i, w in enumerate(VOCAB)}
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def token_id(word: str) -> int:
    """The vocabulary index of ``word`` (see :data:`VOCAB`)."""
    try:
        return _INDEX[word]
    except KeyError:
        raise KeyError(f"unknown word {word!r}; the vocabulary is {list(VOCAB)}") from None


def encode_text(text: str) -> list[int]:
    """Whitespace-split ``text`` into vocabulary ids."""
    return [token_id(w) for w in text.split()]


def random_scene(
    rng: np.random.Generator,
    *,
    num_boxes: int,
    image_size: int,
    fov_deg: float = 60.0,
    depth_range: tuple[float, float] = (2.0, 7.0),
) -> tuple[list[Box], list[str], Camera]:
    """Non-overlapping boxes of distinct colours in front of a camera of random height, heading
    and distance. Returns (boxes, their colour names, camera)."""
    names = list(rng.choice(list(COLORS), size=num_boxes, replace=False))
    boxes: list[Box] = []
    while len(boxes) < num_boxes:
        s = rng.uniform(0.35, 1.6)
        size = (s * rng.uniform(0.7, 1.3), s * rng.uniform(0.6, 1.5), s * rng.uniform(0.7, 1.3))
        z = rng.uniform(*depth_range)
        x = rng.uniform(-0.45, 0.45) * z
        radius = 0.75 * max(size[0], size[2])
        if all(
            np.hypot(x - b.x, z - b.z) > radius + 0.75 * max(b.size[0], b.size[2]) + 0.2
            for b in boxes
        ):
            color = COLORS[names[len(boxes)]]
            boxes.append(Box(x=x, z=z, size=size, color=color, yaw=rng.uniform(-0.6, 0.6)))
    height = rng.uniform(0.8, 2.6)
    eye = (rng.uniform(-0.5, 0.5), height, 0.0)
    mid = sum(depth_range) / 2.0
    target = (rng.uniform(-0.8, 0.8), 0.0, mid + rng.uniform(-0.5, 1.5))
    f = image_size / 2.0 / np.tan(np.radians(fov_deg) / 2.0)
    return boxes, names, look_at(eye, target, f=f, width=image_size, height=image_size)


_A = TypeVar("_A", bound="_Arrays")


class _Arrays:
    """A split as named arrays, one row per question: its length, and ``.npz`` save / load."""

    answers: np.ndarray

    def __len__(self) -> int:
        return len(self.answers)

    def save(self, path) -> None:
        np.savez_compressed(path, **self.__dict__)

    @classmethod
    def load(cls: type[_A], path) -> _A:
        with np.load(path) as data:
            return cls(**{k: data[k] for k in data.files})


@dataclass
class SceneQA(_Arrays):
    """One split of depth questions, as arrays.

    - ``images`` (N, H, W, 3) float32 in [0, 1]; ``depth`` (N, H, W) float32 z-depth (sky: inf);
    - ``poses`` (N, 12) float32 (:meth:`Camera.pose_vector`);
    - ``questions`` (N, L) int64 token ids; ``answers`` (N,) int64 (a colour word's id);
    - ``size_agrees`` (N,) bool: the nearer of the two named boxes also covers more pixels;
    - ``gap`` (N,) float32: |z_a - z_b| of the two box centres in the camera frame.
    """

    images: np.ndarray
    depth: np.ndarray
    poses: np.ndarray
    questions: np.ndarray
    answers: np.ndarray
    size_agrees: np.ndarray
    gap: np.ndarray


def _question(rng, names, boxes, camera, ids, *, min_pixels, min_gap, want_size_agrees, kinds):
    visible = [i for i in range(len(boxes)) if (ids == i).sum() >= min_pixels]
    pairs = [(a, b) for a in visible for b in visible if a < b]
    rng.shuffle(pairs)
    z = camera.to_camera(np.stack([b.center for b in boxes]))[:, 2]
    for a, b in pairs:
        if abs(z[a] - z[b]) < min_gap:
            continue
        near, far = (a, b) if z[a] < z[b] else (b, a)
        agrees = (ids == near).sum() > (ids == far).sum()
        if agrees != want_size_agrees:
            continue
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
        answer = near if kind == "nearer" else far
        text = f"which is {kind} {names[first]} or {names[second]}"
        return text, names[answer], agrees, abs(z[a] - z[b])
    return None


def depth_question_set(
    split: str,
    num: int,
    *,
    data_seed: int = 0,
    image_size: int = 32,
    num_boxes: tuple[int, int] = (3, 4),
    min_pixels: int = 12,
    min_gap: float = 0.6,
    depth_range: tuple[float, float] = (2.0, 7.0),
    kinds: tuple[str, ...] = ("nearer",),
) -> SceneQA:
    """``num`` scenes of ``split`` ("train" | "val" | "test"), one question each; half of them
    (alternately) with ``size_agrees`` False. See the module docstring."""
    if split not in SPLIT_CODE:
        raise ValueError(f"unknown split {split!r}; use one of {sorted(SPLIT_CODE)}")
    out: dict[str, list] = {k: [] for k in SceneQA.__dataclass_fields__}
    draw = 0
    while len(out["answers"]) < num:
        rng = np.random.default_rng([data_seed, SPLIT_CODE[split], draw])
        draw += 1
        k = int(rng.integers(num_boxes[0], num_boxes[1] + 1))
        boxes, names, camera = random_scene(
            rng, num_boxes=k, image_size=image_size, depth_range=depth_range
        )
        r = render(boxes, camera)
        want = len(out["answers"]) % 2 == 0
        q = _question(rng, names, boxes, camera, r.ids, min_pixels=min_pixels,
                      min_gap=min_gap, want_size_agrees=want, kinds=kinds)  # fmt: skip
        if q is None:
            continue
        text, answer, agrees, gap = q
        out["images"].append(r.rgb)
        out["depth"].append(r.depth)
        out["poses"].append(camera.pose_vector())
        out["questions"].append(encode_text(text))
        out["answers"].append(token_id(answer))
        out["size_agrees"].append(agrees)
        out["gap"].append(gap)
    return SceneQA(
        images=np.stack(out["images"]),
        depth=np.stack(out["depth"]),
        poses=np.stack(out["poses"]),
        questions=np.asarray(out["questions"], dtype=np.int64),
        answers=np.asarray(out["answers"], dtype=np.int64),
        size_agrees=np.asarray(out["size_agrees"]),
        gap=np.asarray(out["gap"], dtype=np.float32),
    )


# -- "which is behind X?" seen from a second camera (the novel-view study) ---------------------


@dataclass
class ViewQA(_Arrays):
    """One split of behind-questions, as arrays.

    - ``images`` (N, H, W, 3) / ``depth`` (N, H, W) / ``poses`` (N, 12): the main camera's view;
    - ``view_poses`` (N, 12) and ``views`` (N, H, W, 3): the second camera, from which "behind"
      is meant, and what it sees (the oracle for the ``view`` primitive); ``view_boxes``
      (N, H, W) bool: the view's pixels that show a box;
    - ``questions`` (N, L) "which is behind X"; ``answers`` (N,) the colour word of the box
      behind X seen from the second camera; ``num_candidates`` (N,): the boxes other than X.
    """

    images: np.ndarray
    depth: np.ndarray
    poses: np.ndarray
    view_poses: np.ndarray
    views: np.ndarray
    view_boxes: np.ndarray
    questions: np.ndarray
    answers: np.ndarray
    num_candidates: np.ndarray


def _azimuth(eye: np.ndarray, point: np.ndarray) -> float:
    d = point - eye
    return float(np.arctan2(d[0], d[2]))


def _behind_view(rng, boxes, main_ids, image_size, *, min_pixels, min_separation, fov_deg):
    """A second camera that sees a box Y right behind a named box X, or None.

    The camera stands on the ground-plane line from Y through X, 2.5-4.5 units beyond X, 1-2.2
    units high, looking at X's centre; so Y is behind X from there. Kept when X is what the
    camera sees at its centre, X and Y show at least ``min_pixels`` in the main image (Y also in
    the view: its colour can be read from either), every other box is at least
    ``min_separation`` radians of azimuth off the line or nearer than X, and the camera stands
    clear of every box.
    """
    visible = [i for i in range(len(boxes)) if (main_ids == i).sum() >= min_pixels]
    pairs = [(x, y) for x in visible for y in visible if x != y]
    rng.shuffle(pairs)
    for x, y in pairs[:6]:
        bx, by = boxes[x], boxes[y]
        u = np.array([bx.x - by.x, bx.z - by.z])
        u /= np.linalg.norm(u)
        r = rng.uniform(2.5, 4.5)
        eye = np.array([bx.x + u[0] * r, rng.uniform(1.0, 2.2), bx.z + u[1] * r])
        if any(np.hypot(eye[0] - b.x, eye[2] - b.z) < 0.75 * max(b.size[0], b.size[2]) + 0.3
               for b in boxes):  # fmt: skip
            continue
        f = image_size / 2.0 / np.tan(np.radians(fov_deg) / 2.0)
        camera = look_at(eye, bx.center, f=f, width=image_size, height=image_size)
        view = render(boxes, camera)
        c = image_size // 2
        if not (view.ids[c - 1 : c + 1, c - 1 : c + 1] == x).all():
            continue  # something stands between the camera and X
        if (view.ids == y).sum() < min_pixels:
            continue  # X hides Y from there
        az_x, dist_x = _azimuth(eye, bx.center), np.hypot(*(bx.center - eye)[[0, 2]])
        clear = True
        for k, b in enumerate(boxes):
            if k in (x, y):
                continue
            off = abs((_azimuth(eye, b.center) - az_x + np.pi) % (2 * np.pi) - np.pi)
            if off < min_separation and np.hypot(*(b.center - eye)[[0, 2]]) > dist_x:
                clear = False  # a second box behind X: the answer would not be unique
        if clear:
            return x, y, camera, view
    return None


def behind_question_set(
    split: str,
    num: int,
    *,
    data_seed: int = 0,
    image_size: int = 32,
    num_boxes: tuple[int, int] = (3, 4),
    min_pixels: int = 12,
    min_separation_deg: float = 20.0,
    depth_range: tuple[float, float] = (2.0, 7.0),
    fov_deg: float = 60.0,
) -> ViewQA:
    """``num`` scenes of ``split``, each with a second camera and "which is behind X" about it
    (:func:`_behind_view`). The answer needs the scene's 3D layout: the main image shows every
    box it can be, but "behind" is meant from the second camera. Splits are disjoint by seed,
    as for :func:`depth_question_set` (with its own stream: scene ``i`` draws from
    ``[data_seed, SPLIT_CODE[split], i, 1]``)."""
    if split not in SPLIT_CODE:
        raise ValueError(f"unknown split {split!r}; use one of {sorted(SPLIT_CODE)}")
    out: dict[str, list] = {k: [] for k in ViewQA.__dataclass_fields__}
    draw = 0
    while len(out["answers"]) < num:
        rng = np.random.default_rng([data_seed, SPLIT_CODE[split], draw, 1])
        draw += 1
        k = int(rng.integers(num_boxes[0], num_boxes[1] + 1))
        boxes, names, camera = random_scene(
            rng, num_boxes=k, image_size=image_size, depth_range=depth_range, fov_deg=fov_deg
        )
        main = render(boxes, camera)
        found = _behind_view(rng, boxes, main.ids, image_size, min_pixels=min_pixels,
                             min_separation=np.radians(min_separation_deg), fov_deg=fov_deg)  # fmt: skip
        if found is None:
            continue
        x, y, view_camera, view = found
        out["images"].append(main.rgb)
        out["depth"].append(main.depth)
        out["poses"].append(camera.pose_vector())
        out["view_poses"].append(view_camera.pose_vector())
        out["views"].append(view.rgb)
        out["view_boxes"].append(view.ids >= 0)
        out["questions"].append(encode_text(f"which is behind {names[x]}"))
        out["answers"].append(token_id(names[y]))
        out["num_candidates"].append(k - 1)
    return ViewQA(
        images=np.stack(out["images"]),
        depth=np.stack(out["depth"]),
        poses=np.stack(out["poses"]),
        view_poses=np.stack(out["view_poses"]),
        views=np.stack(out["views"]),
        view_boxes=np.stack(out["view_boxes"]),
        questions=np.asarray(out["questions"], dtype=np.int64),
        answers=np.asarray(out["answers"], dtype=np.int64),
        num_candidates=np.asarray(out["num_candidates"], dtype=np.int64),
    )

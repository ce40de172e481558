"""Write the tiny data the package ships (deterministic; pure Python plus pyarrow):

- ``data/intelligentbench_tiny.parquet``: 6 items in the official IntelligentBench schema
  (``images`` [question, answer] PNG bytes, ``caption`` {q, a}, ``class``), 2 per class;
- ``data/tiny_predictions/``: one answer image per item and ``predictions.jsonl``. Items 0, 2
  and 4 are answered with the ground-truth image, item 1 with its question image unchanged,
  items 3 and 5 with another image (the tiny run's scripted judge scores them 2, 0, 1);
- ``data/tiny_docs/``: 6 interleaved web documents (``docs.jsonl``, images in ``images/``).

    python packages/vqva/scripts/make_tiny_data.py
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parents[1] / "src" / "paperzoo" / "vqva" / "data"
SIZE = 16

Color = tuple[int, int, int]


def png(pixels: list[list[Color]]) -> bytes:
    """An 8-bit RGB PNG of ``pixels`` (rows of (r, g, b))."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))  # fmt: skip


def canvas(background: Color) -> list[list[Color]]:
    return [[background] * SIZE for _ in range(SIZE)]


def rect(img: list[list[Color]], x0: int, y0: int, x1: int, y1: int, color: Color) -> list:
    for y in range(y0, y1):
        for x in range(x0, x1):
            img[y][x] = color
    return img


GRAY, WHITE, BLACK = (128, 128, 128), (255, 255, 255), (0, 0, 0)
ICE, WATER, GREEN, ORANGE = (200, 230, 255), (40, 90, 200), (30, 160, 40), (230, 120, 20)
RED, CYAN = (220, 30, 30), (30, 220, 220)


def bars(n: int) -> bytes:
    img = canvas(WHITE)
    for k in range(n):
        rect(img, 1 + 3 * k, SIZE - 2 - 3 * (k + 1), 3 + 3 * k, SIZE - 2, BLACK)
    return png(img)


def dot(x: int) -> bytes:
    return png(rect(canvas(WHITE), x, 6, x + 4, 10, RED))


IMAGES = {
    "ice_cube": png(rect(canvas(GRAY), 5, 5, 11, 11, ICE)),
    "puddle": png(rect(canvas(GRAY), 2, 11, 14, 14, WATER)),
    "green_leaf": png(rect(canvas(WHITE), 4, 3, 12, 13, GREEN)),
    "autumn_leaf": png(rect(canvas(WHITE), 4, 3, 12, 13, ORANGE)),
    "red_swatch": png(rect(canvas(WHITE), 3, 3, 13, 13, RED)),
    "cyan_swatch": png(rect(canvas(WHITE), 3, 3, 13, 13, CYAN)),
    "logo_dark": png(rect(canvas(BLACK), 4, 6, 12, 10, WHITE)),
    "logo_light": png(rect(canvas(WHITE), 4, 6, 12, 10, BLACK)),
    "bars_3": bars(3),
    "bars_4": bars(4),
    "dot_at_4": dot(4),
    "dot_at_8": dot(8),
    "blank": png(canvas(GRAY)),
    "shoe": png(rect(canvas(WHITE), 2, 9, 14, 13, (120, 60, 20))),
    "cat": png(rect(canvas(WHITE), 5, 4, 11, 12, (90, 90, 90))),
}

BENCH = [  # (class, question image, answer image, q, a)
    ("w", "ice_cube", "puddle",
     "This ice cube is left on a warm table for an hour. Show the table then.",
     "A flat puddle of water where the cube was."),
    ("w", "green_leaf", "autumn_leaf",
     "Show this leaf as it looks in the middle of autumn.", "The same leaf, turned orange."),
    ("d", "red_swatch", "cyan_swatch",
     "Draw the complementary colour of this swatch, as a swatch of the same shape.",
     "A cyan swatch of the same shape."),
    ("d", "logo_dark", "logo_light",
     "Show this logo in its inverted colour scheme.", "The same logo, black on white."),
    ("r", "bars_3", "bars_4",
     "Each figure adds one bar, one step taller. Draw the next figure.", "Four rising bars."),
    ("r", "dot_at_4", "dot_at_8",
     "The dot moves four pixels to the right each second. Show it one second later.",
     "The dot four pixels further right."),
]  # fmt: skip

PREDICTIONS = ["puddle", "green_leaf", "cyan_swatch", "blank", "bars_4", "blank"]

DOCS = [  # (id, [text or image name, ...])
    ("melting-ice", ["How ice melts", "An ice cube straight from the freezer:", "@ice_cube",
                     "Left on a warm table, it turns into a puddle of water within the hour:",
                     "@puddle"]),
    ("colour-wheel", ["Colour wheel basics", "Red sits opposite cyan on the RGB colour wheel.",
                      "@red_swatch", "Its complementary colour:", "@cyan_swatch"]),
    ("bar-puzzle", ["Pattern puzzle: what comes next?", "@bars_3",
                    "Each figure adds a bar one step taller, so the next figure is:", "@bars_4"]),
    ("single-photo", ["Our office at dawn.", "@blank"]),
    ("shoe-sale", ["Cheap shoes, buy now! Free shipping.", "@shoe", "@shoe"]),
    ("cat-gallery", ["Photos of my cat from this week.", "@cat", "@cat"]),
]  # fmt: skip


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "images": pa.array([[IMAGES[q], IMAGES[a]] for _, q, a, _, _ in BENCH],
                           pa.list_(pa.binary())),
        "caption": pa.array([{"q": q, "a": a} for _, _, _, q, a in BENCH],
                            pa.struct([("q", pa.string()), ("a", pa.string())])),
        "class": pa.array([c for c, *_ in BENCH], pa.string()),
    })  # fmt: skip
    pq.write_table(table, DATA / "intelligentbench_tiny.parquet")

    preds = DATA / "tiny_predictions"
    preds.mkdir(exist_ok=True)
    lines = []
    for k, name in enumerate(PREDICTIONS):
        (preds / f"{k}.png").write_bytes(IMAGES[name])
        lines.append(json.dumps({"id": str(k), "prediction": f"{k}.png"}))
    (preds / "predictions.jsonl").write_text("\n".join(lines) + "\n")

    docs = DATA / "tiny_docs"
    (docs / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for doc_id, parts in DOCS:
        interleaved, flags, images = [], [], []
        for part in parts:
            if part.startswith("@"):
                name = part[1:]
                (docs / "images" / f"{name}.png").write_bytes(IMAGES[name])
                interleaved.append(None)
                flags.append("image")
                images.append(f"images/{name}.png")
            else:
                interleaved.append(part)
                flags.append("text")
        lines.append(json.dumps({"id": doc_id, "interleaved": interleaved, "flag": flags,
                                 "image": images}))  # fmt: skip
    (docs / "docs.jsonl").write_text("\n".join(lines) + "\n")
    print(f"wrote {DATA}")


if __name__ == "__main__":
    main()

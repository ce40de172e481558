"""Write ``tiny/``: three drawn images in DeCapBench's layout, captions to score, and the
scripted judge's answers (``scripted_judge.json``) that the tests and the README's hand check use.

    python -m paperzoo.decapbench.data.make_tiny   # rewrites src/paperzoo/decapbench/data/tiny
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent / "tiny"

# name -> (shapes: (kind, colour, box), oracle caption, oracle facts)
IMAGES = {
    "shapes_a.png": (
        [("ellipse", "red", (4, 20, 28, 44)), ("rectangle", "blue", (38, 20, 60, 42))],
        "A red circle on the left and a blue square on the right, on a white background.",
        ["There is a red circle.", "The circle is on the left.", "There is a blue square.",
         "The square is on the right."],
    ),
    "shapes_b.png": (
        [("rectangle", "green", (16, 16, 48, 48))],
        "One green square in the middle of a white image.",
        ["There is a green square.", "The square is in the middle.", "The background is white."],
    ),
    "shapes_c.png": (
        [("ellipse", "yellow", (20, 4, 44, 28)), ("ellipse", "black", (20, 36, 44, 60))],
        "A yellow circle above a black circle.",
        ["There is a yellow circle.", "There is a black circle.",
         "The yellow circle is above the black circle."],
    ),
}  # fmt: skip

CAPTIONS = {
    "shapes_a.png": "There is a red circle. The circle is large. There is a green triangle. "
    "The picture feels calm.",
    "shapes_b.png": "There is a green square. The square is in the middle. The background is white.",
    "shapes_c.png": "Two circles, one yellow and one black.",
}

# What the scripted judge answers, per image: the extracted units, then 3 matchings and 3
# verifications (one entry per unit). shapes_c's extraction is never valid JSON: it fails.
JUDGE = {
    "shapes_a.png": {
        "units": [
            {"fact": "There is a red circle.", "identifier": "circle_0", "relevance": 1},
            {"fact": "The circle is large.", "relevance": 1},
            {"fact": "There is a green triangle.", "identifier": "triangle_0", "relevance": 1},
            {"fact": "The picture feels calm.", "relevance": 0},
        ],
        "matchings": [[0, 0, None, None], [0, 1, None, None], [0, 0, None, None]],
        "verifications": [[1, 1, 0, 1], [1, 1, 0, 1], [1, 0, 0, 1]],
    },
    "shapes_b.png": {
        "units": [
            {"fact": "There is a green square.", "identifier": "square_0", "relevance": 1},
            {"fact": "The square is in the middle.", "relevance": 1},
            {"fact": "The background is white.", "relevance": 1},
        ],
        "matchings": [[0, 1, 2]] * 3,
        "verifications": [[1, 1, 1]] * 3,
    },
    "shapes_c.png": {"malformed": True},
}


def main(root: Path = HERE) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (shapes, caption, facts) in IMAGES.items():
        im = Image.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(im)
        for kind, colour, box in shapes:
            getattr(draw, kind)(box, fill=colour)
        im.save(root / "images" / name)
        rows.append({"image_name": name, "oracle_caption": caption, "oracle_facts": facts})
    with open(root / "human_annotated_oracle_facts.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    with open(root / "captions.jsonl", "w") as fh:  # the official input format
        fh.writelines(
            json.dumps({"image_path": n, "caption": c, "oracle_caption": IMAGES[n][1]}) + "\n"
            for n, c in CAPTIONS.items()
        )
    (root / "scripted_judge.json").write_text(json.dumps(JUDGE, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Write the tiny MIRA-layout data set shipped in ``src/paperzoo/mira/data/tiny`` (needs Pillow).

    python packages/mira/scripts/make_tiny_data.py [OUT]

Five of MIRA's task folders in the official layout (``<task>/<task>.jsonl``, ``image/``,
``cot/``), 11 rows, small PNGs drawn here. The questions are our own, in the spirit of the
official tasks; every answer is computed from the drawn scene (the die rolls, the gear chain,
the convex hull, the mirrored clock), not typed in. Deterministic: no randomness.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "src" / "paperzoo" / "mira" / "data" / "tiny"
CELL = 16
BLACK, WHITE, GREY, RED, BLUE, GREEN = (
    (0, 0, 0),
    (255, 255, 255),
    (170, 170, 170),
    (200, 0, 0),
    (0, 0, 200),
    (0, 140, 0),
)


def save(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path, optimize=True)


def write_rows(task_dir: Path, rows: list[dict]) -> None:
    task_dir.mkdir(parents=True, exist_ok=True)
    with open(task_dir / f"{task_dir.name}.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


# -- dice ------------------------------------------------------------------------------------
MOVES = {"E": (1, 0), "W": (-1, 0), "N": (0, -1), "S": (0, 1)}


def start_die() -> dict[str, int]:
    """1 on top, 2 facing south, 3 facing east (opposite faces sum to 7)."""
    return {"top": 1, "bottom": 6, "south": 2, "north": 5, "east": 3, "west": 4}


def roll(d: dict[str, int], move: str) -> dict[str, int]:
    d = dict(d)
    if move == "E":
        d["top"], d["east"], d["bottom"], d["west"] = d["west"], d["top"], d["east"], d["bottom"]
    elif move == "W":
        d["top"], d["west"], d["bottom"], d["east"] = d["east"], d["top"], d["west"], d["bottom"]
    elif move == "N":
        d["top"], d["north"], d["bottom"], d["south"] = (
            d["south"],
            d["top"],
            d["north"],
            d["bottom"],
        )
    else:
        d["top"], d["south"], d["bottom"], d["north"] = (
            d["north"],
            d["top"],
            d["south"],
            d["bottom"],
        )
    return d


def board(cols: int, rows: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (cols * CELL + 1, rows * CELL + 1), WHITE)
    draw = ImageDraw.Draw(img)
    for c in range(cols + 1):
        draw.line([(c * CELL, 0), (c * CELL, rows * CELL)], fill=GREY)
    for r in range(rows + 1):
        draw.line([(0, r * CELL), (cols * CELL, r * CELL)], fill=GREY)
    return img, draw


def centre(cell: tuple[int, int]) -> tuple[int, int]:
    return cell[0] * CELL + CELL // 2, cell[1] * CELL + CELL // 2


def draw_path(draw: ImageDraw.ImageDraw, start: tuple[int, int], moves: str, colour) -> list:
    cells = [start]
    for m in moves:
        dx, dy = MOVES[m]
        cells.append((cells[-1][0] + dx, cells[-1][1] + dy))
    draw.line([centre(c) for c in cells], fill=colour, width=2)
    x, y = centre(cells[-1])
    draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour, width=2)  # the path's end
    return cells


def draw_die(draw: ImageDraw.ImageDraw, cell: tuple[int, int], top: int, colour) -> None:
    x, y = cell[0] * CELL, cell[1] * CELL
    draw.rectangle([x + 2, y + 2, x + CELL - 2, y + CELL - 2], fill=WHITE, outline=colour, width=2)
    draw.text((x + 5, y + 2), str(top), fill=colour)


def rolling_dice_top(root: Path) -> None:
    task = root / "rolling_dice_top"
    question = (
        "A standard die (opposite faces sum to 7) starts in the square cell with 1 on top, 2 "
        "facing down the picture and 3 facing right. It rolls one cell at a time along the "
        "drawn path to the circle. What number is on top after the last roll?"
    )
    rows = []
    for uid, (start, moves) in enumerate([((0, 1), "EES"), ((1, 2), "NE")], 1):
        img, draw = board(4, 4)
        cells = draw_path(draw, start, moves, BLUE)
        die = start_die()
        draw_die(draw, start, die["top"], BLACK)
        save(img, task / "image" / f"{uid}.png")
        for step, move in enumerate(moves, 1):  # one intermediate image per roll
            die = roll(die, move)
            img, draw = board(4, 4)
            draw_path(draw, start, moves, BLUE)
            draw_die(draw, cells[step], die["top"], BLACK)
            save(img, task / "cot" / f"{uid}_{step}.png")
        rows.append({"uid": uid, "image_path": f"image/{uid}.png", "question": question,
                     "answer": die["top"]})  # fmt: skip
    write_rows(task, rows)


def rolling_dice_two(root: Path) -> None:
    task = root / "rolling_dice_two"
    question = (
        "Two standard dice each start with 1 on top, 2 facing down the picture and 3 facing "
        "right. The red die rolls along the red path, the black die along the black path. "
        "Which die has the larger number on top at the end (red, black, or same), and what is "
        "the sum of the two top numbers?"
    )
    scenes = [(((0, 0), "EE"), ((0, 3), "NE")), (((0, 0), "S"), ((3, 3), "W"))]
    rows = []
    for uid, ((r_start, r_moves), (b_start, b_moves)) in enumerate(scenes, 1):
        img, draw = board(4, 4)
        r_cells = draw_path(draw, r_start, r_moves, RED)
        b_cells = draw_path(draw, b_start, b_moves, BLACK)
        draw_die(draw, r_start, 1, RED)
        draw_die(draw, b_start, 1, BLACK)
        save(img, task / "image" / f"{uid}.png")
        red, black = start_die(), start_die()
        for m in r_moves:
            red = roll(red, m)
        for m in b_moves:
            black = roll(black, m)
        img, draw = board(4, 4)
        draw_path(draw, r_start, r_moves, RED)
        draw_path(draw, b_start, b_moves, BLACK)
        draw_die(draw, r_cells[-1], red["top"], RED)
        draw_die(draw, b_cells[-1], black["top"], BLACK)
        save(img, task / "cot" / f"{uid}.png")
        larger = (
            "red" if red["top"] > black["top"] else "black" if black["top"] > red["top"] else "same"
        )
        rows.append({"uid": uid, "image_path": f"image/{uid}.png", "question": question,
                     "answer1": larger, "answer2": red["top"] + black["top"]})  # fmt: skip
    write_rows(task, rows)


# -- gears -----------------------------------------------------------------------------------
def gear_rotation(root: Path) -> None:
    """A row of meshing gears, leftmost turning clockwise; each turns opposite to its left
    neighbour. Two questions per picture: the items n.1 and n.2."""
    task = root / "gear_rotation"
    rows = []
    for base, count in ((1, 4), (2, 5)):
        size = (count * 20 + 8, 32)

        def picture(arrows: bool, count=count, size=size) -> Image.Image:
            img = Image.new("RGB", size, WHITE)
            draw = ImageDraw.Draw(img)
            for g in range(count):
                x = 14 + 20 * g
                draw.ellipse([x - 10, 6, x + 10, 26], outline=BLACK, width=2)
                draw.ellipse([x - 2, 14, x + 2, 18], fill=BLACK)
                if arrows:  # clockwise: an arc with its head on the right; counter: on the left
                    clockwise = g % 2 == 0
                    draw.arc(
                        [x - 6, 10, x + 6, 22], 200, 340, fill=GREEN if clockwise else RED, width=2
                    )
                    hx = x + 6 if clockwise else x - 6
                    draw.polygon(
                        [(hx - 2, 13), (hx + 2, 13), (hx, 17)], fill=GREEN if clockwise else RED
                    )
            draw.text((10, 0), "A", fill=BLUE)
            return img

        save(picture(False), task / "image" / f"{base}.png")
        save(picture(True), task / "cot" / f"{base}.png")
        last = "clockwise" if (count - 1) % 2 == 0 else "counterclockwise"
        rows.append({"uid": f"{base}.1", "image_path": f"image/{base}.png", "question": (
            f"The {count} gears in the row mesh with their neighbours. Gear A (leftmost) turns "
            "clockwise. Which way does the rightmost gear turn: clockwise or counterclockwise?"
        ), "answer": last})  # fmt: skip
        rows.append({"uid": f"{base}.2", "image_path": f"image/{base}.png", "question": (
            f"The {count} gears in the row mesh with their neighbours. Gear A (leftmost) turns "
            "clockwise. How many of the gears turn clockwise, gear A included?"
        ), "answer": (count + 1) // 2})  # fmt: skip
    write_rows(task, rows)


# -- convex hull -----------------------------------------------------------------------------
def hull(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Andrew's monotone chain: the hull's vertices (collinear points dropped)."""
    pts = sorted(set(points))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def convex_hull(root: Path) -> None:
    task = root / "convex_hull"
    scenes = [
        [(10, 12), (50, 8), (58, 40), (30, 56), (6, 44), (30, 30), (40, 22), (20, 38)],
        [(8, 8), (56, 10), (52, 54), (12, 50), (32, 6), (30, 30), (44, 36), (18, 24), (34, 46)],
    ]
    question = (
        "How many of the blue points are corners (vertices) of the convex hull of all the "
        "blue points?"
    )
    rows = []
    for uid, points in enumerate(scenes, 1):
        corners = hull(points)

        def picture(show_hull: bool, mark: bool, points=points, corners=corners) -> Image.Image:
            img = Image.new("RGB", (64, 64), WHITE)
            draw = ImageDraw.Draw(img)
            if show_hull:
                draw.polygon(corners, outline=GREEN)
            for x, y in points:
                colour = RED if mark and (x, y) in corners else BLUE
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
            return img

        save(picture(False, False), task / "image" / f"{uid}.png")
        if uid == 1:
            save(picture(True, False), task / "cot" / f"{uid}.png")
        else:  # two intermediate images: the hull, then its corners marked
            save(picture(True, False), task / "cot" / f"{uid}_1.png")
            save(picture(True, True), task / "cot" / f"{uid}_2.png")
        rows.append({"uid": uid, "image_path": f"image/{uid}.png", "question": question,
                     "answer": len(corners)})  # fmt: skip
    write_rows(task, rows)


# -- mirror clock ----------------------------------------------------------------------------
def clock(hour: int, minute: int) -> Image.Image:
    import math

    img = Image.new("RGB", (64, 64), WHITE)
    draw = ImageDraw.Draw(img)
    draw.ellipse([2, 2, 61, 61], outline=BLACK, width=2)
    for t in range(12):
        a = math.radians(t * 30)
        r0 = 24 if t % 3 else 21
        draw.line([(32 + r0 * math.sin(a), 32 - r0 * math.cos(a)),
                   (32 + 27 * math.sin(a), 32 - 27 * math.cos(a))], fill=BLACK, width=1)  # fmt: skip
    a_m = math.radians(minute * 6)
    a_h = math.radians((hour % 12) * 30 + minute * 0.5)
    draw.line([(32, 32), (32 + 24 * math.sin(a_m), 32 - 24 * math.cos(a_m))], fill=BLACK, width=2)
    draw.line([(32, 32), (32 + 14 * math.sin(a_h), 32 - 14 * math.cos(a_h))], fill=BLACK, width=3)
    return img


def mirror_clock(root: Path) -> None:
    task = root / "mirror_clock"
    hour, minute = 2, 25  # the real time
    real = clock(hour, minute)
    save(real.transpose(Image.Transpose.FLIP_LEFT_RIGHT), task / "image" / "1.png")
    save(real, task / "cot" / "1.png")  # the mirror image flipped back
    write_rows(task, [{"uid": 1, "image_path": "image/1.png", "question": (
        "The picture shows a clock without numbers as seen in a mirror (the 12 is at the top). "
        "What time does the clock really show? Answer as H:MM."
    ), "answer": f"{hour}:{minute:02d}"}])  # fmt: skip


def main(out: Path = OUT) -> None:
    for task in (rolling_dice_top, rolling_dice_two, gear_rotation, convex_hull, mirror_clock):
        task(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)

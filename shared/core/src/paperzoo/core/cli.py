"""The ``paperzoo`` command.

``list``, ``info`` and ``new`` never import torch. ``reproduce``/``train`` run a recipe in
this process, or relaunch themselves under torchrun with ``--nproc N``. ``doctor`` reports the
environment and every plugin. Plugins can add sub-commands through ``paperzoo_commands``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paperzoo.core import api
from paperzoo.core.registry import KINDS, DuplicateNameError, UnknownNameError, get_registry

LIST_KINDS = [
    "models",
    "papers",
    "recipes",
    "datasets",
    "methods",
    "metrics",
    "backends",
    "commands",
]


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = []
    for i, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# -- list --------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    kind = args.kind
    registry = get_registry()
    entries = registry.entries(kind)
    names = registry.names(kind, args.pattern)
    rows: list[tuple[str, ...]] = []
    for name in names:
        entry = entries[name]
        spec = entry.spec
        if kind == "papers":
            detail = (spec.arxiv or "", _short(spec.title, 70))
        elif kind == "recipes":
            detail = (spec.paper or "", spec.variant)
        elif kind == "models":
            params = f"{spec.num_params / 1e6:.2f}M" if spec.num_params else ""
            detail = (spec.paper or "", params)
        elif kind == "commands":
            detail = ("", _short(spec.help))
        else:
            detail = (getattr(spec, "paper", None) or "", _short(getattr(spec, "description", "")))
        rows.append((name, *detail, entry.dist))
    headers = {
        "papers": ("name", "arxiv", "title", "distribution"),
        "recipes": ("name", "paper", "variant", "distribution"),
        "models": ("name", "paper", "params", "distribution"),
    }.get(kind, ("name", "paper", "description", "distribution"))
    if not rows:
        print(
            f"no {kind} registered" + (f" matching {args.pattern!r}" if args.pattern != "*" else "")
        )
        return 0
    print(_table(rows, headers))
    return 0


# -- info --------------------------------------------------------------------------------------


def _spec_lines(spec: Any) -> list[str]:
    lines = [f"  {type(spec).__name__}"]
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if value in (None, "", (), {}) or (hasattr(value, "__len__") and len(value) == 0):
            continue
        if hasattr(value, "items"):
            value = dict(value)
        lines.append(f"    {f.name}: {value}")
    return lines


def cmd_info(args: argparse.Namespace) -> int:
    from paperzoo.core.config import config_fields

    registry = get_registry()
    found = []
    for kind in KINDS:
        try:
            entries = registry.entries(kind)
        except DuplicateNameError:
            continue
        if args.name in entries:
            found.append((kind, entries[args.name]))
    if not found:
        known = {n for kind in KINDS for n in registry.entries(kind)}
        raise UnknownNameError("names", args.name, known)
    papers_shown: set[str] = set()
    for kind, entry in found:
        spec = entry.spec
        print(f"{KINDS[kind][2]} {spec.name!r} (from {entry.dist}, plugin {entry.plugin!r})")
        print("\n".join(_spec_lines(spec)))
        paper = spec.name if kind == "papers" else getattr(spec, "paper", None)
        if kind == "recipes":
            from paperzoo.core._imports import resolve

            cfg = resolve(spec.config)()
            print("  config fields (default):")
            for key, tp, default in config_fields(cfg):
                tname = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
                print(f"    {key}: {tname} = {default!r}")
            if spec.study:
                study = resolve(spec.study)()
                print(f"  study: {len(study.arms)} arms x seeds {list(study.seeds)}")
                for arm in study.arms:
                    what = " ".join(arm.overrides) or "(the recipe's defaults)"
                    print(f"    arm {arm.name}: {what}")
                for claim in study.claims:
                    print(
                        f"    claim: {claim.statement} [{claim.metric}: {claim.arm} vs "
                        f"{claim.baseline}, {claim.rule}]"
                    )
        if kind == "papers":
            models = api.list_models(paper=spec.name)
            recipes = api.list_recipes(paper=spec.name)
            if models:
                print("  models: " + ", ".join(models))
            if recipes:
                print("  recipes: " + ", ".join(recipes))
            papers_shown.add(spec.name)
        elif paper and paper not in papers_shown:
            try:
                pspec = api.get_paper(paper)
            except UnknownNameError:
                continue
            authors = ", ".join(pspec.authors)
            print(f"  paper: {pspec.title} ({authors}; arXiv {pspec.arxiv})")
            papers_shown.add(paper)
        print()
    return 0


# -- reproduce / train ---------------------------------------------------------------------------


def _find_recipe(paper: str, variant: str) -> Any:
    registry = get_registry()
    recipes = registry.entries("recipes")
    # `--recipe` may be a variant of the paper ("tiny") or a full recipe name.
    if variant in recipes and recipes[variant].spec.paper == paper:
        return recipes[variant].spec
    matches = [
        e.spec for e in recipes.values() if e.spec.paper == paper and e.spec.variant == variant
    ]
    if matches:
        return matches[0]
    if paper not in registry.entries("papers") and not any(
        e.spec.paper == paper for e in recipes.values()
    ):
        raise UnknownNameError("papers", paper, registry.entries("papers"))
    variants = sorted(e.spec.variant for e in recipes.values() if e.spec.paper == paper)
    raise UnknownNameError(
        "recipes", f"{paper} --recipe {variant}", [f"{paper} --recipe {v}" for v in variants]
    )


def _relaunch_torchrun(nproc: int, argv: Sequence[str]) -> int:
    """Re-run this command under torchrun with ``nproc`` processes on this node."""
    cleaned: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        cleaned.append(arg)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", "paperzoo.core.cli", *cleaned,
    ]  # fmt: skip
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.call(cmd)


def _run(recipe: Any, args: argparse.Namespace, argv: Sequence[str]) -> int:
    from paperzoo.core.run import build_config, run_recipe

    overrides = list(args.set or [])
    if args.data:
        overrides.append(f"data.root={args.data}")
    build_config(recipe, overrides)  # validate before any process is started
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _relaunch_torchrun(args.nproc, argv)
    out = Path(args.out or os.path.join("runs", recipe.name))
    if recipe.study:
        # A study (arms x seeds, declared claims) is run by paperzoo-train, which every paper
        # that declares one depends on.
        from paperzoo.core._imports import resolve

        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
        try:
            resolve("paperzoo.train.study:run_study")(
                recipe, out_dir=out, overrides=overrides, seeds=seeds, resume=args.resume,
                cell=args.cell, collect=args.collect,
            )  # fmt: skip
        except ValueError as exc:
            if type(exc).__name__ != "StudyError":
                raise
            print(f"paperzoo: error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.cell or args.collect or args.seeds:
        print(
            f"paperzoo: error: recipe {recipe.name!r} is a single run, not a study; --cell, "
            "--collect and --seeds apply to recipes that declare one (paperzoo info shows it)",
            file=sys.stderr,
        )
        return 2
    run_recipe(recipe, out_dir=out, overrides=overrides, resume=args.resume)
    return 0


def cmd_reproduce(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return _run(_find_recipe(args.paper, args.recipe), args, argv)


def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    return _run(api.get_recipe(args.recipe), args, argv)


# -- doctor --------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from paperzoo.core.doctor import report

    print(report())
    return 0


# -- new -----------------------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from paperzoo.core.template import render_package

    try:
        dest = render_package(args.paper, Path(args.dest), title=args.title)
    except ValueError as exc:
        print(f"paperzoo: error: {exc}", file=sys.stderr)
        return 2
    print(f"created {dest}")
    print(
        "next: add it to git, run `uv lock`, then `nox -s \"tests(package='" + args.paper + "')\"`"
    )
    return 0


# -- main ----------------------------------------------------------------------------------------


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output directory (default: runs/<recipe>)")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)"
    )
    p.add_argument("--data", help="dataset root; shorthand for --set data.root=PATH")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints")
    p.add_argument("--nproc", type=int, default=0, help="processes on this node (torchrun)")
    study = p.add_argument_group("studies (recipes that declare arms x seeds and claims)")
    study.add_argument(
        "--cell", metavar="ARM/SEED", help="run one cell of the study (for schedulers)"
    )
    study.add_argument(
        "--collect", action="store_true", help="aggregate the finished cells; run nothing"
    )
    study.add_argument("--seeds", metavar="S,S,...", help="the study's seeds (default: its own)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paperzoo",
        description="Reproducible computer-vision and multimodal papers, one package each.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("list", help="list registered models, papers, recipes, ...")
    p.add_argument("kind", nargs="?", default="models", choices=LIST_KINDS)
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'hiera_*'")
    p = sub.add_parser("info", help="show a spec, its paper and its recipe fields")
    p.add_argument("name")
    p = sub.add_parser("reproduce", help="run a paper's recipe (default: tiny)")
    p.add_argument("paper")
    p.add_argument("--recipe", default="tiny", help="recipe variant (tiny, paper, ...) or name")
    _add_run_args(p)
    p = sub.add_parser("train", help="run a recipe by name")
    p.add_argument("recipe")
    _add_run_args(p)
    sub.add_parser("doctor", help="versions, accelerators, kernels and plugin status")
    p = sub.add_parser("new", help="scaffold a new paper package")
    p.add_argument("paper", help="short package name, e.g. 'hiera'")
    p.add_argument("--dest", default="packages", help="parent directory (default: packages)")
    p.add_argument("--title", default="", help="the paper's title")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    builtin = {"list", "info", "reproduce", "train", "doctor", "new", "-h", "--help"}
    if argv and argv[0] not in builtin and not argv[0].startswith("-"):
        # A plugin's own sub-command?
        try:
            spec = api.get_command(argv[0])
        except (UnknownNameError, DuplicateNameError):
            spec = None
        if spec is not None:
            from paperzoo.core._imports import resolve

            return int(resolve(spec.command)(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command in ("reproduce", "train"):
            handler = cmd_reproduce if args.command == "reproduce" else cmd_train
            return handler(args, argv)
        return {"list": cmd_list, "info": cmd_info, "doctor": cmd_doctor, "new": cmd_new}[
            args.command
        ](args)
    except (UnknownNameError, DuplicateNameError, FileExistsError) as exc:
        print(f"paperzoo: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        from paperzoo.core.config import ConfigError

        if isinstance(exc, ConfigError):
            print(f"paperzoo: error: {exc}", file=sys.stderr)
            return 2
        raise
    except BrokenPipeError:  # `paperzoo list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())

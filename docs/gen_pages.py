"""Generate the site's index and paper pages from the installed plugins (mkdocs-gen-files).

``mkdocs build`` runs this script (``plugins: gen-files`` in ``mkdocs.yml``). Nothing here is
kept by hand: every paper that a plugin registers gets ``papers/<name>.md`` built from

- its :class:`~paperzoo.core.PaperSpec` (title, authors, arXiv, official code, headline results);
- its models (parameters, MACs where declared, checkpoint loader, pretrained tags), methods
  and recipes (config fields and defaults, the study's arms and claims: what ``paperzoo info``
  prints);
- the committed result of its tiny study, ``docs/results/<paper>/summary.json`` and
  ``study.png`` (refresh them with ``docs/refresh_results.py``);
- its package README, whose sections follow the generated part.

The index lists every paper with its M, C, T, P, I evidence (``../shared/DESIGN.md``'s five
deliverables), read off the same registry. A paper added to the workspace appears on the next
build without an edit here. Run ``python docs/gen_pages.py --print PAPER`` to see one page.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from paperzoo.core._imports import resolve
from paperzoo.core.config import config_fields
from paperzoo.core.registry import Entry, get_registry

DOCS = Path(__file__).resolve().parent
RESULTS = DOCS / "results"


@dataclass
class Paper:
    """One paper and everything registered for it."""

    entry: Entry
    models: list[Entry] = field(default_factory=list)
    methods: list[Entry] = field(default_factory=list)
    recipes: list[Entry] = field(default_factory=list)
    # judged benchmarks (metrics tagged "benchmark") that the paper's distribution registers
    benchmarks: list[Entry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.entry.spec.name

    @property
    def dist(self) -> str:
        return self.entry.dist

    def summary(self, variant: str = "tiny") -> dict[str, Any] | None:
        """The committed summary of a study (``docs/results/<paper>/summary.json`` for the
        ``tiny`` one, ``docs/results/<paper>/<variant>/summary.json`` for another), if any."""
        path = results_dir(self.name, variant) / "summary.json"
        return json.loads(path.read_text()) if path.is_file() else None


def results_dir(paper: str, variant: str = "tiny") -> Path:
    """Where a study's committed ``summary.json`` and ``study.png`` live."""
    return RESULTS / paper if variant == "tiny" else RESULTS / paper / variant


def collect_papers() -> list[Paper]:
    registry = get_registry()
    papers = {name: Paper(entry) for name, entry in sorted(registry.entries("papers").items())}
    for kind, attr in (("models", "models"), ("methods", "methods"), ("recipes", "recipes")):
        for _, entry in sorted(registry.entries(kind).items()):
            paper = papers.get(getattr(entry.spec, "paper", None) or "")
            if paper is not None:
                getattr(paper, attr).append(entry)
    by_dist = {p.dist: p for p in papers.values()}
    for _, entry in sorted(registry.entries("metrics").items()):
        if "benchmark" in entry.spec.tags and entry.dist in by_dist:
            by_dist[entry.dist].benchmarks.append(entry)
    return list(papers.values())


# -- small Markdown helpers ------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def _mean_std(stats: dict[str, Any]) -> str:
    mean, std = stats.get("mean"), stats.get("std")
    if mean is None:
        return "-"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


# -- README ------------------------------------------------------------------------------------


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # a plugin registered by hand, not installed
        return "(not installed)"


def readme_text(dist: str) -> str:
    """The package's README: the file in its source tree for an editable (workspace) install,
    so that the page follows the checkout, else the README stored in its metadata."""
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return ""
    direct = d.read_text("direct_url.json")
    if direct:
        info = json.loads(direct)
        if info.get("dir_info", {}).get("editable") and info["url"].startswith("file:"):
            readme = Path(url2pathname(urlparse(info["url"]).path)) / "README.md"
            if readme.is_file():
                return readme.read_text()
    return d.metadata.get_payload() or d.metadata.get("Description") or ""  # type: ignore[attr-defined]


_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def readme_sections(text: str) -> str:
    """The README below its title, headings one level down (the page has its own title),
    relative links (files of the repository, not pages of the site) as plain code."""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    out, fenced = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,5} ", line):
            line = "#" + line
        out.append(line)
    body = "\n".join(out)

    def relink(m: re.Match[str]) -> str:
        text, target = m.group(1), m.group(2)
        if re.match(r"[a-z]+://|#|mailto:", target):
            return m.group(0)
        return f"{text} (`{target}`)"

    return _LINK.sub(relink, body).strip() + "\n"


# -- status: M, C, T, P, I ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """One deliverable: whether the registry shows it, a short cell and the evidence."""

    ok: bool | None  # None: does not apply (a benchmark has no checkpoints)
    short: str
    evidence: str

    def cell(self, long: bool = False) -> str:
        mark = {True: "✓ ", False: "✗ ", None: "- "}[self.ok]
        return mark + (self.evidence if long else self.short)


def status(paper: Paper) -> dict[str, Mark]:
    """What the registry and the committed results show for each of DESIGN.md's deliverables.

    It shows what is declared and committed; the package's tests and README hold the proof
    (parameter counts, parity, the study's protocol)."""
    if paper.benchmarks and not (paper.models or paper.methods):
        return benchmark_status(paper)
    models = [e.spec for e in paper.models]
    counted = [m for m in models if m.num_params]
    loaders = [m.name for m in models if m.checkpoint_loader]
    tiny = [e.spec for e in paper.recipes if e.spec.study]
    full = [e.spec for e in paper.recipes if e.spec.variant.startswith("paper")]
    summary = paper.summary()
    if not tiny:
        t = Mark(False, "no study", "no tiny study declared")
    elif summary is None:
        t = Mark(True, "no result yet", f"study `{tiny[0].name}` declared; no committed result")
    else:
        held, n = sum(c["holds"] for c in summary["claims"]), len(summary["claims"])
        t = Mark(
            True,
            f"{held} of {n} claims hold",
            f"study `{tiny[0].name}`: {held} of {n} claims hold ({len(summary['seeds'])} seeds)",
        )
    return {
        "M": Mark(
            bool(models or paper.methods),
            f"{len(models)} models",
            f"{len(models)} models ({len(counted)} with a declared parameter count), "
            f"{len(paper.methods)} method{'s' * (len(paper.methods) != 1)}",
        ),
        "C": Mark(
            bool(loaders),
            f"{len(loaders)} of {len(models)}",
            f"official checkpoints load into {len(loaders)} of {len(models)} models"
            if loaders
            else "no checkpoint converter",
        ),
        "T": t,
        "P": Mark(
            bool(full),
            f"{len(full)} recipe{'s' * (len(full) != 1)}",
            ", ".join(f"`{r.name}`" for r in full) or "no paper recipe",
        ),
        "I": Mark(
            True, "yes", f"`pip install {paper.dist}`, discovered as plugin `{paper.entry.plugin}`"
        ),
    }


def benchmark_status(paper: Paper) -> dict[str, Mark]:
    """A benchmark package's deliverables: its scoring rule (M), no weights (C), the tiny
    end-to-end run against the scripted judge in its tests (T), the full run (P)."""
    names = ", ".join(f"`{e.spec.name}`" for e in paper.benchmarks)
    n = len(paper.benchmarks)
    return {
        "M": Mark(True, f"{n} benchmark{'s' * (n != 1)}", f"scoring rules: {names}"),
        "C": Mark(None, "n/a", "a benchmark has no weights"),
        "T": Mark(True, "scripted run", "a tiny end-to-end run on shipped data against the "
                  "scripted judge, in the package's tests; the README works its score by hand"),
        "P": Mark(True, "`paperzoo eval`", "`paperzoo eval NAME --data PATH` on the official "
                  "data, with the judge of your choice"),
        "I": Mark(True, "yes", f"`pip install {paper.dist}`, discovered as plugin "
                  f"`{paper.entry.plugin}`"),
    }  # fmt: skip


def benchmark_markdown(entry: Entry) -> str:
    """One benchmark: what it scores, its command and its options (its dataclass fields)."""
    import dataclasses

    spec = entry.spec
    parts = [f"### `{spec.name}`\n", f"{spec.description}\n"]
    parts.append(f"`paperzoo eval {spec.name} --data PATH --out DIR` (`paperzoo eval --help`).\n")
    benchmark = resolve(spec.factory)()
    if dataclasses.is_dataclass(benchmark):
        rows = [[f"`{f.name}`", f"`{getattr(benchmark, f.name)!r}`"]
                for f in dataclasses.fields(benchmark)]  # fmt: skip
        parts.append("Options (`--set KEY=VALUE`):\n\n" + table(["option", "default"], rows))
    return "\n".join(parts)


# -- the tiny study ----------------------------------------------------------------------------


def study_markdown(paper: Paper, summary: dict[str, Any], variant: str = "tiny") -> str:
    """The arms table (mean ± std and every seed) per shown metric, then the claims' verdicts."""
    seeds = [str(s) for s in summary["seeds"]]
    command = f"paperzoo reproduce {paper.name}" + (
        "" if variant == "tiny" else f" --recipe {variant}"
    )
    parts = [
        f"`{command}` ran {len(summary['arms'])} arms x "
        f"{len(seeds)} seeds (recipe `{summary['recipe_name']}`, "
        f"{summary.get('cells_wall_seconds', 0) / 60:.1f} min of cell wall time where it was "
        "refreshed). Test-split numbers, as the study runner recorded them in `summary.json`.\n"
    ]
    for metric in summary["shown_metrics"]:
        rows = []
        for arm, info in summary["arms"].items():
            stats = info["metrics"].get(metric)
            if stats is None:
                continue
            per_seed = [_num(stats["per_seed"].get(s), 4) for s in seeds]
            rows.append([f"`{arm}`", _mean_std(stats), *per_seed])
        if rows:
            header = ["arm", "mean ± std", *(f"seed {s}" for s in seeds)]
            parts.append(f"**{metric}**\n\n" + table(header, rows))
    parts.append("**Claims** (decided by code: `paperzoo.train.study`)\n")
    for claim in summary["claims"]:
        verdict = "holds" if claim["holds"] else "does not hold"
        kind = "success" if claim["holds"] else "failure"
        delta = claim.get("delta")
        won = claim.get("seeds_won")
        detail = f"`{claim['arm']}` - `{claim['baseline']}` on {claim['metric']}: " + (
            f"{delta:+.2f}" if isinstance(delta, int | float) else "-"
        )
        if won is not None:
            detail += f", won {won} of {len(seeds)} seeds"
        parts.append(
            f'!!! {kind} "The claim {verdict}: {_cell(claim["statement"])}"\n'
            f"    {detail}. Rule `{claim['rule']}`: {claim.get('rule_text', '')}.\n"
        )
    png = results_dir(paper.name, variant) / "study.png"
    if png.is_file():
        parts.append(
            f"![Per-seed results and means of the {paper.name} {variant} study]"
            f"(../results/{png.relative_to(RESULTS).as_posix()})\n"
        )
    return "\n".join(parts)


# -- pages ---------------------------------------------------------------------------------------


def _command(paper: str, recipe: Any) -> str:
    if recipe.variant == "tiny":
        return f"paperzoo reproduce {paper}"
    if recipe.study:  # a second CPU study: its data are bundled or generated too
        return f"paperzoo reproduce {paper} --recipe {recipe.variant}"
    return f"paperzoo reproduce {paper} --recipe {recipe.variant} --data PATH"


def reproduction_table(paper: Paper) -> str:
    rows = []
    for entry in paper.recipes:
        spec = entry.spec
        if spec.study:
            summary = paper.summary(spec.variant)
            paper_value = "the claims below"
            if summary is None:
                ours = "no committed result"
            else:
                held = sum(c["holds"] for c in summary["claims"])
                ours = f"{held} of {len(summary['claims'])} claims hold"
        else:
            paper_value = ", ".join(f"{k} {v}" for k, v in spec.reference.items()) or "-"
            ours = "not run here (needs the data set and GPUs)"
        rows.append([f"`{spec.name}`", paper_value, ours, f"`{_command(paper.name, spec)}`"])
    return table(["recipe", "paper", "ours", "command"], rows)


def recipe_markdown(paper: str, spec: Any) -> str:
    cfg = resolve(spec.config)()
    parts = [f"### `{spec.name}`\n", f"{spec.description}\n" if spec.description else ""]
    parts.append(f"`{_command(paper, spec)}`; change a field with `--set KEY=VALUE`.\n")
    if spec.study:
        study = resolve(spec.study)()
        arms = [
            [f"`{a.name}`", " ".join(f"`{o}`" for o in a.overrides) or "(defaults)", a.description]
            for a in study.arms
        ]
        parts.append(
            f"Study: {len(study.arms)} arms x seeds {list(study.seeds)}.\n\n"
            + table(["arm", "overrides", "what"], arms)
        )
        claims = [
            [c.statement, c.metric, f"`{c.arm}` vs `{c.baseline}`", f"`{c.rule}`"]
            for c in study.claims
        ]
        parts.append(table(["claim", "metric", "arms", "rule"], claims))
    fields = []
    for key, tp, default in config_fields(cfg):
        tname = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
        fields.append([f"`{key}`", f"`{tname}`", f"`{default!r}`"])
    parts.append(
        f'??? note "Config fields of `{spec.name}` ({len(fields)})"\n\n'
        + "\n".join(
            "    " + line for line in table(["field", "type", "default"], fields).splitlines()
        )
        + "\n"
    )
    return "\n".join(p for p in parts if p)


def models_table(paper: Paper) -> str:
    rows = []
    for entry in paper.models:
        m = entry.spec
        rows.append(
            [
                f"`{m.name}`",
                f"{m.num_params:,}" if m.num_params else "-",
                f"{m.flops / 1e9:.3g}" if m.flops else "-",
                "yes" if m.checkpoint_loader else "-",
                ", ".join(f"`{t}`" for t in m.pretrained) or "-",
                m.description,
            ]
        )
    return table(
        ["model", "parameters", "GMACs", "official checkpoints", "pretrained", "what"], rows
    )


def paper_page(paper: Paper) -> str:
    spec = paper.entry.spec
    release = version(paper.dist)
    cite = [", ".join(spec.authors)] if spec.authors else []
    cite.append(" ".join(str(v) for v in (spec.venue, spec.year) if v))
    if spec.arxiv:
        cite.append(f"[arXiv:{spec.arxiv}](https://arxiv.org/abs/{spec.arxiv})")
    if spec.official_code:
        cite.append(f"[official code]({spec.official_code})")
    parts = [
        f"# {spec.title or spec.name}\n",
        " · ".join(c for c in cite if c) + "\n",
        f"Package `{paper.dist}` {release}: `pip install {paper.dist}`. {spec.description}\n",
        "## Status\n",
        table(
            ["", "evidence (from the registry and the committed results)"],
            [[k, v.cell(long=True)] for k, v in status(paper).items()],
        ),
    ]
    if paper.recipes or not paper.benchmarks:
        parts += ["## Reproduction\n", reproduction_table(paper)]
    if spec.headline_results:
        parts.append(
            "Headline results in the paper:\n\n"
            + table(["result", "paper"], list(spec.headline_results.items()))
        )
    summary = paper.summary()
    if paper.benchmarks:
        parts += ["## Benchmarks\n", *(benchmark_markdown(e) for e in paper.benchmarks)]
    if summary is not None:
        parts += ["### Tiny study\n", study_markdown(paper, summary)]
    elif paper.recipes or not paper.benchmarks:  # a benchmark's tiny run is a scripted test
        parts.append(
            "### Tiny study\n\nNo committed result: run `python docs/refresh_results.py "
            f"{paper.name} --run` to add one.\n"
        )
    for entry in paper.recipes:  # further declared studies with a committed result
        variant = entry.spec.variant
        other = paper.summary(variant) if entry.spec.study and variant != "tiny" else None
        if other is not None:
            parts += [f"### Study `{entry.spec.name}`\n", study_markdown(paper, other, variant)]
    if paper.models:
        parts += ["## Models\n", models_table(paper)]
    if paper.methods:
        parts += [
            "## Methods\n",
            table(
                ["method", "what"],
                [[f"`{e.spec.name}`", e.spec.description] for e in paper.methods],
            ),
        ]
    if paper.recipes:
        parts += ["## Recipes\n", *(recipe_markdown(paper.name, e.spec) for e in paper.recipes)]
    readme = readme_text(paper.dist)
    if readme:
        parts += ["## From the package README\n", readme_sections(readme)]
    return "\n".join(parts)


def index_page(papers: list[Paper]) -> str:
    rows = []
    for paper in papers:
        spec = paper.entry.spec
        s = status(paper)
        rows.append(
            [
                f"[{paper.name}](papers/{paper.name}.md)",
                f"{spec.title} ({spec.year})" if spec.year else spec.title,
                f"`{paper.dist}` {version(paper.dist)}",
                *(s[k].cell() for k in "MCTPI"),
            ]
        )
    return "\n".join(
        [
            "# paperzoo\n",
            "Reproducible computer-vision and multimodal research code: one package per paper, "
            "discovered as plugins, each with a tiny CPU study that tests the paper's central "
            "claim over 3 seeds and a `paper` recipe with the official hyper-parameters.\n",
            "## Papers\n",
            f"{len(papers)} papers installed. The columns are the five deliverables of a paper "
            "package: **M** the model or method, **C** official checkpoints load, **T** the "
            "tiny reproduction of the central claim, **P** the paper recipe, **I** installs and "
            "is discovered alone. Each cell shows what the registry and the committed results "
            "say; a claim that does not hold is counted as such.\n",
            table(["paper", "title", "package", "M", "C", "T", "P", "I"], rows),
            "## Guides\n",
            "- [Quickstart](quickstart.md): install, list, build a model by name, reproduce.",
            "- [Writing a plugin](plugin-authoring.md): a paper package of your own.",
            "- [Studies](studies.md): arms x seeds, claims, resume and cluster fan-out.",
            "- [CLI reference](cli.md): every `paperzoo` command and option.",
            "- [API reference](api/core.md): `paperzoo.core`'s public functions.\n",
        ]
    )


API_PAGE = """# API reference: `paperzoo.core`

The public surface of the core, from its docstrings: building by name, the specs that plugins
return, running recipes, checkpoints and the registry.

::: paperzoo.core
    options:
      show_submodules: false
      members_order: source
"""


GUIDES = {
    "Quickstart": "quickstart.md",
    "Writing a plugin": "plugin-authoring.md",
    "Studies": "studies.md",
    "CLI reference": "cli.md",
}


def nav(papers: list[Paper]) -> str:
    """The navigation (mkdocs-literate-nav's SUMMARY.md): every paper, then the guides."""
    lines = ["* [Home](index.md)", "* Papers"]
    lines += [f"    * [{p.name}](papers/{p.name}.md)" for p in papers]
    lines += ["* Guides", *(f"    * [{title}]({path})" for title, path in GUIDES.items())]
    lines.append("* [API reference](api/core.md)")
    return "\n".join(lines) + "\n"


def generate(write: Any) -> None:
    papers = collect_papers()
    write("index.md", index_page(papers))
    for paper in papers:
        write(f"papers/{paper.name}.md", paper_page(paper))
    write("api/core.md", API_PAGE)
    write("SUMMARY.md", nav(papers))


def _mkdocs_write(path: str, text: str) -> None:
    import mkdocs_gen_files

    with mkdocs_gen_files.open(path, "w") as fh:
        fh.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", metavar="PAPER", help="print one paper's page")
    args = parser.parse_args(argv)
    pages: dict[str, str] = {}
    generate(pages.__setitem__)
    key = f"papers/{args.print}.md" if args.print else "index.md"
    if key not in pages:
        print(f"no page {key}; papers: {sorted(p for p in pages if p.startswith('papers/'))}")
        return 1
    print(pages[key])
    return 0


if __name__ == "__main__":
    sys.exit(main())
elif __name__ == "<run_path>":  # mkdocs-gen-files runs the script with runpy.run_path
    generate(_mkdocs_write)

"""The documentation site: its generated pages, then the built site in headless Chromium.

``nox -s docs`` builds the site (``mkdocs build --strict``) into ``PAPERZOO_SITE_DIR`` and runs
these tests; the browser tests need that build and Debian's chromium.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(DOCS))

import gen_pages  # noqa: E402
from site_browser import browser, serve  # noqa: E402

from paperzoo.core import PaperSpec, RecipeSpec, hookimpl  # noqa: E402
from paperzoo.core.registry import get_registry  # noqa: E402

SITE = Path(os.environ.get("PAPERZOO_SITE_DIR", DOCS.parent / "site"))
PAGE = "mocov2"  # the paper page the browser test opens (its study result is committed)


def _pages() -> dict[str, str]:
    pages: dict[str, str] = {}
    gen_pages.generate(pages.__setitem__)
    return pages


# -- generated pages, no browser ------------------------------------------------------------


def test_every_installed_paper_gets_a_page_in_the_index_and_the_nav():
    papers = sorted(get_registry().entries("papers"))
    pages = _pages()
    assert sorted(p[len("papers/") : -3] for p in pages if p.startswith("papers/")) == papers
    for name in papers:
        assert f"[{name}](papers/{name}.md)" in pages["index.md"]
        assert f"* [{name}](papers/{name}.md)" in pages["SUMMARY.md"]


class _NewPaper:
    """A paper registered at run time, as a new package's plugin would be."""

    @hookimpl
    def paperzoo_papers(self):
        return [PaperSpec(name="zz_newpaper", title="A Paper Added Later", year=2026)]

    @hookimpl
    def paperzoo_recipes(self):
        return [
            RecipeSpec(
                name="zz_newpaper_paper",
                config="paperzoo.core.config:TrainerConfig",
                runner="paperzoo.core.run:run_recipe",
                paper="zz_newpaper",
                variant="paper",
                reference={"top1": 50.0},
            )
        ]


def test_a_paper_added_later_appears_without_an_edit():
    registry = get_registry()
    registry.register(_NewPaper(), name="zz_newpaper")
    try:
        pages = _pages()
    finally:
        registry.pm.unregister(name="zz_newpaper")
        for kind in ("papers", "recipes"):
            for name in [n for n in registry._entries[kind] if n.startswith("zz_newpaper")]:
                del registry._entries[kind][name]
        registry._plugins.pop("zz_newpaper", None)
    page = pages["papers/zz_newpaper.md"]
    assert page.startswith("# A Paper Added Later")
    assert "| `zz_newpaper_paper` | top1 50.0 | not run here" in page
    assert "`trainer.max_steps`" not in page and "`max_steps`" in page  # its config fields
    assert "[zz_newpaper](papers/zz_newpaper.md)" in pages["index.md"]


def test_a_benchmark_paper_shows_its_benchmarks_and_no_checkpoint_gap():
    """A benchmark package registers metrics tagged ``benchmark``, not models or recipes:
    its page lists them with their options, and C is "does not apply", not a failure."""
    pages = _pages()
    page = pages["papers/decapbench.md"]
    assert "## Benchmarks" in page and "### `decapbench`" in page and "### `feedquill`" in page
    assert "`paperzoo eval decapbench --data PATH --out DIR`" in page
    assert "| `tries` | `3` |" in page and "| `samples` | `4` |" in page  # FeedQuill's options
    assert "- a benchmark has no weights" in page and "Tiny study" not in page
    row = next(line for line in pages["index.md"].splitlines() if "[decapbench]" in line)
    assert "- n/a" in row and "✗" not in row


def test_a_failed_claim_is_said_plainly():
    summary = json.loads((DOCS / "results" / PAGE / "summary.json").read_text())
    page = _pages()[f"papers/{PAGE}.md"]
    for claim in summary["claims"]:
        verdict = "holds" if claim["holds"] else "does not hold"
        assert f'"The claim {verdict}: {claim["statement"]}"' in page
    held = sum(c["holds"] for c in summary["claims"])
    assert f"{held} of {len(summary['claims'])} claims hold" in page


def test_readme_sections_move_down_a_level_and_repository_links_become_text():
    text = "# paperzoo-x\n\n## Install\n\n```bash\n# a comment\n```\n\nSee [the bench](bench/b.py) and [arXiv](https://arxiv.org).\n"
    out = gen_pages.readme_sections(text)
    assert out.startswith("### Install")
    assert "# a comment" in out and "## a comment" not in out  # code blocks untouched
    assert "the bench (`bench/b.py`)" in out and "[arXiv](https://arxiv.org)" in out


# -- the built site in Chromium --------------------------------------------------------------


@pytest.fixture(scope="module")
def site():
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site in {SITE}: run `mkdocs build --strict` (nox -s docs does)")
    with serve(SITE) as served:
        yield served


@pytest.fixture(scope="module")
def page():
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        yield page


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_index_renders_the_papers_table(page, site):
    url, _ = site
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok
    table = page.locator("article table").first
    header = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert header == ["paper", "title", "package", "M", "C", "T", "P", "I"]
    names = [n.strip() for n in table.locator("tbody tr td:first-child").all_inner_texts()]
    assert sorted(names) == sorted(get_registry().entries("papers"))
    assert page.errors == []


def test_paper_page_shows_the_reproduction_table_and_the_study_plot(page, site):
    url, requested = site
    page.goto(url, wait_until="networkidle")
    page.locator("article table").first.get_by_role("link", name=PAGE, exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.url == f"{url}papers/{PAGE}/"
    spec = get_registry().entries("papers")[PAGE].spec
    assert page.locator("article h1").first.inner_text().rstrip("¶ \n") == spec.title

    table = page.locator("xpath=//h2[@id='reproduction']/following::table[1]")
    header = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert header == ["recipe", "paper", "ours", "command"]
    rows = table.locator("tbody tr").all_inner_texts()
    assert any(f"{PAGE}_tiny" in r and f"paperzoo reproduce {PAGE}" in r for r in rows)

    summary = json.loads((DOCS / "results" / PAGE / "summary.json").read_text())
    titles = page.locator(".admonition-title").all_inner_texts()
    assert len([t for t in titles if t.startswith("The claim ")]) == len(summary["claims"])
    if not all(c["holds"] for c in summary["claims"]):
        assert any(t.startswith("The claim does not hold") for t in titles)

    plot = page.locator("img[alt*='tiny study']")
    plot.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete", arg=plot.element_handle())
    size = plot.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert tuple(size) == _png_size(DOCS / "results" / PAGE / "study.png")  # decoded, not broken
    assert requested.get(f"/results/{PAGE}/study.png") == 1
    assert page.errors == []


def test_api_reference_documents_the_core_functions(page, site):
    import paperzoo.core as core

    url, _ = site
    response = page.goto(f"{url}api/core/", wait_until="networkidle")
    assert response is not None and response.ok
    headings = " ".join(page.locator("article h2").all_inner_texts())
    public = [n for n in core.__all__ if callable(getattr(core, n)) and not n.startswith("_")]
    missing = [n for n in public if f"{n}(" not in headings and f"{n} " not in headings]
    assert "create_model(" in headings and not missing, missing

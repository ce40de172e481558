"""Serve the built site on 127.0.0.1 and drive headless Chromium (Playwright) against it.

The browser test (docs/tests/test_site.py) uses these helpers; as a script it takes a
screenshot of one page of a built site:

    mkdocs build --strict                                       # or: nox -s docs
    python docs/site_browser.py papers/mocov2/ --out mocov2.png  # any page, full height

Chromium is Debian's (``apt-get install chromium``) or whatever ``PAPERZOO_CHROMIUM`` names;
Playwright drives it and never downloads a browser of its own.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"

# As root in a container Chromium needs --no-sandbox; the others keep it off the closed network
# (background requests to Google's hosts fail here, many at a time).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files, with the requests counted by path (a test can see what was fetched)."""

    requested: dict[str, int]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.requested[path] = self.requested.get(path, 0) + 1
        super().do_GET()


@contextmanager
def serve(site: Path = SITE) -> Iterator[tuple[str, dict[str, int]]]:
    """Serve ``site`` on a free port of 127.0.0.1: yields (base URL, requested paths)."""
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site} holds no built site: run `mkdocs build --strict` first")
    requested: dict[str, int] = {}
    handler = type("Handler", (_QuietHandler,), {"requested": requested})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()


def chromium_path() -> str:
    path = os.environ.get("PAPERZOO_CHROMIUM") or shutil.which("chromium")
    path = path or shutil.which("chromium-browser")
    if not path:
        raise FileNotFoundError(
            "no Chromium found: install Debian's (apt-get install chromium) or set PAPERZOO_CHROMIUM"
        )
    return path


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium, through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page_path: str, out: Path, site: Path = SITE, width: int = 1280) -> Path:
    with serve(site) as (url, _), browser() as chromium:
        page = chromium.new_page(viewport={"width": width, "height": 900})
        response = page.goto(url + page_path.lstrip("/"), wait_until="networkidle")
        if response is None or not response.ok:
            raise RuntimeError(
                f"{page_path}: HTTP {response.status if response else 'no response'}"
            )
        page.screenshot(path=str(out), full_page=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot one page of the built site.")
    parser.add_argument("page", nargs="?", default="", help="e.g. papers/mocov2/ (default: index)")
    parser.add_argument("--out", type=Path, default=Path("site-screenshot.png"))
    parser.add_argument("--site", type=Path, default=SITE)
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    print(screenshot(args.page, args.out, args.site, args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())

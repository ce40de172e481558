"""Helpers shared by the tests: the tiny data set, and reading what the server was sent."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from paperzoo.mira.layout import TINY


def image_bytes(part: dict) -> bytes:
    """The bytes of a chat image part (a base64 data URL)."""
    url = part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,"), url[:40]
    return base64.b64decode(url.split(",", 1)[1])


def user_content(body: dict) -> list[dict]:
    (message,) = body["messages"]
    assert message["role"] == "user"
    return message["content"]


def request_key(body: dict) -> tuple[str, bytes]:
    """(prompt text, question image bytes): which item a model request is about."""
    content = user_content(body)
    return content[-1]["text"], image_bytes(content[0])


@pytest.fixture
def tiny() -> Path:
    return TINY


def argv(data, out, url, *extra, judge=False):
    args = [
        "mira", "--data", str(data), "--out", str(out),
        "--model-base-url", url, "--model", "m", "--model-api-key", "EMPTY",
        "--no-cache", "--concurrency", "4", "--max-attempts", "2", *extra,
    ]  # fmt: skip
    if judge:
        args += ["--judge-base-url", url, "--judge-model", "j", "--judge-api-key", "EMPTY"]
    return args


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())

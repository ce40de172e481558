"""A client for OpenAI-compatible chat-completions endpoints, built to be paid for once.

:class:`ChatClient` sends :class:`ChatRequest` s through the official ``openai`` library
(``AsyncOpenAI(base_url=...)``: OpenAI, Azure's OpenAI-compatible endpoint, vLLM, SGLang, TGI) with

- bounded concurrency (``concurrency`` requests in flight) and a requests-per-minute limit
  (:class:`RateLimiter`), which every attempt passes through, retries included;
- retries with exponential backoff and full jitter on 429, 5xx, timeouts and dropped connections,
  waiting at least the server's ``Retry-After`` (seconds, HTTP date, or ``retry-after-ms``);
  other 4xx fail at once with :class:`RequestFailed`, which says what to fix;
- a response cache (:class:`~paperzoo.eval.cache.ResponseCache`) keyed by the whole request, so
  that a rerun or a resumed run pays for nothing twice;
- token and cost accounting (:class:`~paperzoo.eval.accounting.Usage`).

The library's own retries are off (``max_retries=0``): they would run inside one call, past the
rate limiter and the accounting, and they cap ``Retry-After`` at 60 s. The API key is held by the
``openai`` client only; every message this module writes goes through :func:`redact`, and a
logging filter on the ``openai`` and ``httpx`` loggers removes the key from their records.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from paperzoo.eval.accounting import Usage
from paperzoo.eval.cache import ResponseCache

__all__ = [
    "ChatClient",
    "ChatRequest",
    "ChatResponse",
    "RateLimiter",
    "RequestFailed",
    "RetryPolicy",
    "cached_response",
    "image_mime",
    "image_part",
    "redact",
    "store_response",
]

log = logging.getLogger(__name__)


class RequestFailed(RuntimeError):
    """A request that retrying cannot fix (a 4xx other than 429), or that ran out of retries."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status, self.attempts = status, attempts


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (of 4 characters or more) replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class _RedactFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def image_mime(data: bytes) -> str:
    """The MIME type of encoded image bytes (PNG, JPEG, GIF, WebP), from their magic bytes."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("not a PNG, JPEG, GIF or WebP image")


def image_part(
    path_or_bytes: str | os.PathLike[str] | bytes, detail: str | None = None, jpeg: bool = False
) -> dict[str, Any]:
    """A chat-completions image content part (a base64 data URL) from a file or bytes.

    ``detail``: the ``low``/``high``/``auto`` hint (left out when None). ``jpeg``: re-encode as
    RGB JPEG first (Pillow's default quality 75), as official evaluation scripts that open the
    image with PIL and send ``format="jpeg"`` do; otherwise the bytes go as they are."""
    import base64
    from pathlib import Path

    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    if jpeg:
        try:
            from PIL import Image
        except ImportError:
            raise ImportError(
                "re-encoding an image as JPEG needs Pillow: pip install pillow"
            ) from None
        import io

        buf = io.BytesIO()
        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB").save(buf, format="jpeg")
        data = buf.getvalue()
    part: dict[str, Any] = {
        "url": f"data:{image_mime(data)};base64,{base64.b64encode(data).decode()}"
    }
    if detail is not None:
        part["detail"] = detail
    return {"type": "image_url", "image_url": part}


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions call: messages in the wire format (text or content-part lists)."""

    messages: tuple[dict[str, Any], ...]
    n: int = 1
    temperature: float = 0.0
    max_tokens: int | None = None
    seed: int | None = None
    # Distinguishes deliberate re-asks of the same prompt (a malformed answer asked again):
    # part of the cache key, never sent.
    attempt: int = 0

    @staticmethod
    def of(prompt: str | list[dict[str, Any]], **kwargs: Any) -> ChatRequest:
        """From a user prompt, or a list of messages."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return ChatRequest(messages=tuple(messages), **kwargs)

    def body(self, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": list(self.messages), "n": self.n}
        body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        return body

    def key(self, model: str, base_url: str) -> str:
        """The cache key: the endpoint, the whole request body and ``attempt``."""
        payload = {"base_url": base_url, "body": self.body(model), "attempt": self.attempt}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ChatResponse:
    texts: tuple[str, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    @property
    def text(self) -> str:
        return self.texts[0]


def cached_response(cache: ResponseCache | None, key: str, usage: Usage) -> ChatResponse | None:
    """The cached answer for ``key`` (counted as a cache hit in ``usage``), or None."""
    hit = cache.get(key) if cache is not None else None
    if hit is None:
        return None
    usage.add_cached()
    return ChatResponse(tuple(hit["texts"]), hit["prompt_tokens"], hit["completion_tokens"],
                        cached=True)  # fmt: skip


def store_response(cache: ResponseCache | None, key: str, response: ChatResponse) -> None:
    """Commit ``response`` to the cache under ``key`` (nothing without a cache)."""
    if cache is not None:
        cache.put(key, {"texts": list(response.texts), "prompt_tokens": response.prompt_tokens,
                        "completion_tokens": response.completion_tokens})  # fmt: skip


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt k waits U(0, min(cap, base * 2**k)),
    and at least the server's ``Retry-After``."""

    max_attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    timeout: float = 120.0  # per attempt, seconds

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0.0, min(self.cap, self.base * 2**attempt))
        return max(backoff, retry_after or 0.0)


class RateLimiter:
    """At most ``per_minute`` acquisitions in any ``window`` seconds (60: a sliding minute);
    None: no limit."""

    def __init__(self, per_minute: float | None, window: float = 60.0) -> None:
        if per_minute is not None and per_minute <= 0:
            raise ValueError(f"requests per minute must be > 0, got {per_minute}")
        self.per_minute, self.window, self.clock = per_minute, window, time.monotonic
        self._times: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.per_minute is None:
            return
        async with self._lock:
            while True:
                now = self.clock()
                while self._times and now - self._times[0] >= self.window:
                    self._times.popleft()
                if len(self._times) < self.per_minute:
                    self._times.append(now)
                    return
                await asyncio.sleep(self.window - (now - self._times[0]))


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, ``Retry-After`` in seconds or as
    an HTTP date; None when absent or unreadable."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


@dataclass
class ChatClient:
    """Chat completions against one endpoint and model (see the module docstring).

    ``base_url``, ``model`` and ``api_key`` default to ``OPENAI_BASE_URL``, ``OPENAI_MODEL`` and
    ``OPENAI_API_KEY``. A local server without authentication takes any key (``"EMPTY"``).
    """

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 8
    requests_per_minute: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache: ResponseCache | None = None
    usage: Usage = field(default_factory=Usage)
    seed: int = 0  # of the jitter

    def __post_init__(self) -> None:
        from openai import AsyncOpenAI

        self.model = self.model or os.environ.get("OPENAI_MODEL")
        self.base_url = self.base_url or os.environ.get("OPENAI_BASE_URL")
        key = self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        if not self.model:
            raise ValueError("no model: pass --model (or set OPENAI_MODEL)")
        if not self.base_url:
            raise ValueError("no endpoint: pass --base-url (or set OPENAI_BASE_URL)")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        self._secrets = [key]
        self.api_key = None  # held by the openai client only
        self._openai = AsyncOpenAI(
            api_key=key, base_url=self.base_url, max_retries=0, timeout=self.retry.timeout
        )
        self._slots = asyncio.Semaphore(self.concurrency)
        self._limiter = RateLimiter(self.requests_per_minute)
        self._rng = random.Random(self.seed)
        self._filter = _RedactFilter(self._secrets)
        for name in ("openai", "httpx", "httpx2", "httpcore"):
            logging.getLogger(name).addFilter(self._filter)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    async def close(self) -> None:
        await self._openai.close()
        for name in ("openai", "httpx", "httpx2", "httpcore"):
            logging.getLogger(name).removeFilter(self._filter)

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The response to ``request``: from the cache, or from the endpoint (with retries)."""
        assert self.model is not None and self.base_url is not None
        key = request.key(self.model, self.base_url)
        hit = cached_response(self.cache, key, self.usage)
        if hit is not None:
            return hit
        response = await self._send(request)
        self.usage.add(self.model, response.prompt_tokens, response.completion_tokens)
        store_response(self.cache, key, response)
        return response

    async def _send(self, request: ChatRequest) -> ChatResponse:
        import openai

        assert self.model is not None
        body = request.body(self.model)
        last = ""
        for attempt in range(self.retry.max_attempts):
            await self._limiter.acquire()
            retry_after: float | None = None
            async with self._slots:
                self.usage.requests += 1
                try:
                    completion = await self._openai.chat.completions.create(**body)
                except openai.APIStatusError as exc:
                    status = exc.status_code
                    detail = self.redact(_error_detail(exc))
                    if status != 429 and status < 500 and status not in (408, 409):
                        raise RequestFailed(
                            f"{self.model} at {self.base_url}: HTTP {status}: {detail}. "
                            + _hint(status),
                            status=status,
                            attempts=attempt + 1,
                        ) from None
                    retry_after = _retry_after(exc.response.headers)
                    last = f"HTTP {status}: {detail}"
                except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                    last = f"{type(exc).__name__}: {self.redact(str(exc))}"
                except ValueError as exc:  # a 200 whose body is not JSON (cut short, garbled)
                    last = f"unreadable response body: {self.redact(str(exc))}"
                else:
                    choices = completion.choices or []
                    texts = tuple((c.message.content or "") for c in choices)
                    if len(texts) != request.n:
                        last = f"asked for {request.n} choices, got {len(texts)}"
                    else:
                        u = completion.usage
                        return ChatResponse(
                            texts,
                            getattr(u, "prompt_tokens", 0) or 0,
                            getattr(u, "completion_tokens", 0) or 0,
                        )
            self.usage.retries += 1
            if attempt + 1 < self.retry.max_attempts:
                wait = self.retry.delay(attempt, retry_after, self._rng)
                log.warning("retrying in %.2fs after %s (attempt %d)", wait, last, attempt + 1)
                await asyncio.sleep(wait)
        raise RequestFailed(
            f"{self.model} at {self.base_url}: gave up after {self.retry.max_attempts} "
            f"attempts; last: {last}",
            attempts=self.retry.max_attempts,
        )


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(getattr(exc, "message", "") or exc)


def _hint(status: int) -> str:
    return {
        400: "The request is malformed for this server (model name, message format, max_tokens?).",
        401: "The key was refused: check --api-key / OPENAI_API_KEY.",
        403: "The key may not use this model or endpoint.",
        404: "Check --base-url (it usually ends in /v1) and the model name.",
        413: "The request is too large (images, context length).",
        422: "The server could not process the request body.",
    }.get(status, "Retrying will not fix it.")

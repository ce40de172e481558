"""ChatClient against a real scripted chat-completions server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from paperzoo.eval import ChatClient, ChatRequest, RequestFailed, ResponseCache, RetryPolicy
from paperzoo.eval.testing import Reply, ScriptedChatServer

KEY = "sk-test-SECRET-1234567890"


def _client(server, **kwargs):
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base=0.05, cap=0.2, timeout=2.0))
    return ChatClient(model="m", base_url=server.url, api_key=KEY, **kwargs)


async def _ask(client, *prompts, **kwargs):
    try:
        return [await client.complete(ChatRequest.of(p, **kwargs)) for p in prompts]
    finally:
        await client.close()


def test_429_waits_for_retry_after_then_succeeds():
    def answer(body, n):
        return Reply(status=429, headers={"Retry-After": "1"}) if n == 1 else "fine"

    with ScriptedChatServer(answer) as server:
        client = _client(server)
        start = time.perf_counter()
        (response,) = asyncio.run(_ask(client, "hello"))
        elapsed = time.perf_counter() - start
    assert response.text == "fine" and server.asked["hello"] == 2
    assert elapsed >= 1.0 and client.usage.retries == 1 and client.usage.requests == 2


def test_5xx_timeouts_and_garbled_bodies_are_retried():
    script = {
        1: Reply(status=500),
        2: Reply(delay=3.0, content="late"),
        3: Reply(raw=b'{"id": "x", "cho'),
    }

    def answer(body, n):
        return script.get(n, "ok")

    with ScriptedChatServer(answer) as server:
        client = _client(server)
        (response,) = asyncio.run(_ask(client, "p"))
    assert response.text == "ok" and server.asked["p"] == 4 and client.usage.retries == 3


def test_gives_up_after_max_attempts():
    with (
        ScriptedChatServer(lambda body, n: Reply(status=503)) as server,
        pytest.raises(RequestFailed, match="gave up after 4 attempts"),
    ):
        asyncio.run(_ask(_client(server), "p"))
    assert server.asked["p"] == 4


def test_4xx_fails_at_once_and_the_key_never_shows(tmp_path, caplog):
    def answer(body, n):  # a server that echoes the key in its error, as some do
        return Reply(status=401, error=f"invalid key {KEY}")

    caplog.set_level(logging.DEBUG)
    with ScriptedChatServer(answer) as server:
        with pytest.raises(RequestFailed) as info:
            asyncio.run(_ask(_client(server, cache=ResponseCache(tmp_path / "c.sqlite")), "p"))
        sent = {k.lower(): v for k, v in server.headers[0].items()}
        assert sent["authorization"] == f"Bearer {KEY}"  # it was sent
    assert server.asked["p"] == 1 and info.value.status == 401
    assert "check --api-key" in str(info.value) and KEY not in str(info.value)
    assert KEY not in caplog.text
    assert all(KEY.encode() not in f.read_bytes() for f in tmp_path.iterdir())


def test_cache_pays_once_per_distinct_request(tmp_path):
    with ScriptedChatServer(lambda body, n: f"answer {n}") as server:
        cache = ResponseCache(tmp_path / "c.sqlite")
        asyncio.run(_ask(_client(server, cache=cache), "p", "p"))
        again = asyncio.run(_ask(_client(server, cache=cache), "p"))
        asyncio.run(_ask(_client(server, cache=cache), "p", temperature=0.7))
    assert server.asked["p"] == 2 and again[0].text == "answer 1" and again[0].cached
    assert len(cache) == 2


def test_concurrency_and_rate_limit_bound_the_requests():
    async def many(client, n):
        try:
            return await asyncio.gather(
                *(client.complete(ChatRequest.of(f"p{i}")) for i in range(n))
            )
        finally:
            await client.close()

    with ScriptedChatServer(lambda body, n: "x", latency=0.1) as server:
        asyncio.run(many(_client(server, concurrency=3), 12))
    assert server.max_in_flight == 3
    with ScriptedChatServer(lambda body, n: "x") as server:
        client = _client(server, concurrency=8)
        client._limiter.per_minute, client._limiter.window = 2, 0.5  # 2 per 0.5 s
        start = time.perf_counter()
        asyncio.run(many(client, 6))
        assert time.perf_counter() - start >= 1.0  # windows 0, 0.5, 1.0

"""paperzoo-eval: judged benchmarks over OpenAI-compatible endpoints, and ``paperzoo eval``.

- :mod:`paperzoo.eval.client`: :class:`ChatClient` (concurrency, rate limit, retries,
  ``Retry-After``, the response cache, cost accounting; keys never logged);
- :mod:`paperzoo.eval.runner`: the :class:`Benchmark` interface and :func:`evaluate`
  (resumable JSONL, failed items counted, ``summary.json``);
- :mod:`paperzoo.eval.testing`: a real scripted chat-completions server on 127.0.0.1;
- :mod:`paperzoo.eval.cli`: ``paperzoo eval``.
"""

from paperzoo.eval.accounting import Usage, load_prices
from paperzoo.eval.cache import ResponseCache
from paperzoo.eval.client import ChatClient, ChatRequest, ChatResponse, RequestFailed, RetryPolicy
from paperzoo.eval.runner import (
    Benchmark,
    MalformedOutput,
    ask_parsed,
    ask_parsed_samples,
    evaluate,
    group_means,
)

__version__ = "0.1.0"

__all__ = [
    "Benchmark",
    "ChatClient",
    "ChatRequest",
    "ChatResponse",
    "MalformedOutput",
    "RequestFailed",
    "ResponseCache",
    "RetryPolicy",
    "Usage",
    "ask_parsed",
    "ask_parsed_samples",
    "evaluate",
    "group_means",
    "load_prices",
]

"""LocalChatClient on tiny random models written here (paperzoo.eval.testing_hf), offline.

The models know nothing, so the answers are noise; what is checked is what a benchmark relies on:
the prompt goes through the chat template (and an image through the processor), ``n`` answers
come back, greedy and seeded sampling repeat, tokens are counted, the cache answers a repeat
without generating (or even loading the model), a text-only model refuses an image, and the
runner's ``evaluate`` takes the client as the model under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import threading

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: loading is local_files_only
pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

from paperzoo.eval import Benchmark, ChatRequest, ResponseCache, evaluate  # noqa: E402
from paperzoo.eval.client import image_part  # noqa: E402
from paperzoo.eval.local import LocalChatClient  # noqa: E402
from paperzoo.eval.testing_hf import write_tiny_causal_lm, write_tiny_vlm  # noqa: E402


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return write_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny-lm")


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    return write_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-vlm")


def _png(colour):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, format="PNG")
    return buf.getvalue()


def _ask(client, *requests):
    async def run():
        return [await client.complete(r) for r in requests]

    return asyncio.run(run())


class _CountingGenerate:
    """Wraps a model class's ``generate``: calls, the most at once, and the threads used."""

    def __init__(self, monkeypatch, cls):
        self.calls = self.in_flight = self.max_in_flight = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        original = cls.generate

        def generate(model, *args, **kwargs):
            with self._lock:
                self.calls += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self.threads.add(threading.current_thread().name)
            try:
                return original(model, *args, **kwargs)
            finally:
                with self._lock:
                    self.in_flight -= 1

        monkeypatch.setattr(cls, "generate", generate)


def test_a_text_request_goes_through_the_chat_template_and_is_counted(lm):
    client = LocalChatClient(lm)
    assert client.model == "tiny-lm" and client.concurrency == 1 and not client.is_vlm
    (response,) = _ask(client, ChatRequest.of("hello there", max_tokens=6))
    tokenizer = transformers.AutoTokenizer.from_pretrained(lm, local_files_only=True)
    prompt = "<s><|user|>\nhello there</s>\n<|assistant|>\n"
    assert response.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False).input_ids)
    assert len(response.texts) == 1 and isinstance(response.text, str)
    assert 1 <= response.completion_tokens <= 6 and not response.cached
    summary = client.usage.summary()
    assert summary["requests"] == 1 and summary["cache_hits"] == 0
    assert summary["tokens"] == {
        "tiny-lm": {"prompt": response.prompt_tokens, "completion": response.completion_tokens}
    }
    assert summary["cost_usd"] == 0.0 and summary["unpriced_models"] == []


def test_n_samples_greedy_repeats_and_seeded_sampling_reproduces(lm):
    def sample(n, seed=None, temperature=1.0):
        return ChatRequest.of("describe a cat", n=n, temperature=temperature, max_tokens=8,
                              seed=seed)  # fmt: skip

    one, other = LocalChatClient(lm), LocalChatClient(lm)
    greedy, sampled, sampled_1, reseeded = _ask(
        one, sample(3, temperature=0.0), sample(3, seed=7), sample(1, seed=7), sample(3, seed=8)
    )
    assert len(greedy.texts) == 3 and len(set(greedy.texts)) == 1
    assert len(sampled.texts) == 3 and len(set(sampled.texts)) == 3
    # sample i is drawn with seed + i: the first of 3 is the only one of 1
    assert sampled_1.texts == sampled.texts[:1]
    assert reseeded.texts != sampled.texts
    # a second client (its own weights, no cache) gives the same answers
    greedy_2, sampled_2 = _ask(other, sample(3, temperature=0.0), sample(3, seed=7))
    assert greedy_2.texts == greedy.texts and sampled_2.texts == sampled.texts
    # n answers, each counted: 3 sampled answers of at most 8 tokens, the prompt once
    assert 3 <= sampled.completion_tokens <= 24
    assert greedy.completion_tokens % 3 == 0 and greedy.completion_tokens > 0
    prompts = sum(r.prompt_tokens for r in (greedy, sampled, sampled_1, reseeded))
    completions = sum(r.completion_tokens for r in (greedy, sampled, sampled_1, reseeded))
    assert one.usage.tokens["tiny-lm"] == [prompts, completions] and one.usage.requests == 4


def test_a_vlm_answers_an_image_request(vlm):
    client = LocalChatClient(vlm)
    assert client.is_vlm
    text = {"type": "text", "text": "Describe the image."}
    with_image = ChatRequest.of(
        [{"role": "user", "content": [image_part(_png((200, 30, 30))), text]}], max_tokens=6
    )
    without = ChatRequest.of([{"role": "user", "content": [text]}], max_tokens=6)
    as_string = ChatRequest.of("Describe the image.", max_tokens=6)
    answered, plain, string = _ask(client, with_image, without, as_string)
    assert len(answered.texts) == 1 and 1 <= answered.completion_tokens <= 6
    # the image reached the processor: 28 px in 14 px patches, CLS dropped: 4 image tokens
    assert answered.prompt_tokens == plain.prompt_tokens + 4
    assert string.prompt_tokens == plain.prompt_tokens and string.texts == plain.texts


def test_a_text_only_model_refuses_an_image_before_generating(lm, monkeypatch):
    counter = _CountingGenerate(monkeypatch, transformers.LlamaForCausalLM)
    client = LocalChatClient(lm)
    content = [image_part(_png((0, 0, 255))), {"type": "text", "text": "hi"}]
    request = ChatRequest.of([{"role": "user", "content": content}])
    with pytest.raises(ValueError, match="text-only model and the request has an image"):
        _ask(client, request)
    assert counter.calls == 0 and client.usage.requests == 0


def test_the_cache_answers_a_repeat_without_generating(lm, tmp_path, monkeypatch):
    counter = _CountingGenerate(monkeypatch, transformers.LlamaForCausalLM)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    first = LocalChatClient(lm, cache=cache)
    request = ChatRequest.of("hello there", n=2, temperature=0.7, max_tokens=5, seed=3)
    fresh, again = _ask(first, request, request)
    assert counter.calls == 2  # the two samples of the first call; the second was cached
    assert not fresh.cached and again.cached and again.texts == fresh.texts
    assert (again.prompt_tokens, again.completion_tokens) == (
        fresh.prompt_tokens,
        fresh.completion_tokens,
    )
    assert first.usage.requests == 1 and first.usage.cache_hits == 1 and len(cache) == 1
    # a new client on the same folder and cache never loads the weights
    second = LocalChatClient(lm, cache=cache)
    (hit,) = _ask(second, request)
    assert hit.cached and hit.texts == fresh.texts and second._model is None
    assert counter.calls == 2 and second.usage.requests == 0 and second.usage.cache_hits == 1
    # a deliberate re-ask (attempt 1) is its own entry, generated
    (reask,) = _ask(second, dataclasses.replace(request, attempt=1))
    assert not reask.cached and counter.calls == 4 and len(cache) == 2
    cache.close()


@dataclasses.dataclass
class AnswerLength(Benchmark):
    """A test benchmark: the score of an answer is its length in characters."""

    name = "answer-length"

    def load(self, data):
        return [json.loads(line) for line in open(data)]

    def request(self, item):
        return ChatRequest.of(f"question {item['id']}", max_tokens=6)

    async def score(self, item, predictions, judge):
        return {"score": float(len(predictions[0]))}


def test_evaluate_runs_a_benchmark_on_the_local_model(lm, tmp_path, monkeypatch):
    counter = _CountingGenerate(monkeypatch, transformers.LlamaForCausalLM)
    items = [{"id": str(i), "group": "ab"[i % 2]} for i in range(6)]
    client = LocalChatClient(lm, cache=ResponseCache(tmp_path / "cache.sqlite"))
    bench = AnswerLength()
    summary = asyncio.run(evaluate(bench, items, tmp_path / "out", model=client))
    assert summary["scored"] == 6 and summary["failed"] == 0
    assert summary["model"]["name"] == "tiny-lm" and summary["model"]["requests"] == 6
    assert summary["model"]["cost_usd"] == 0.0
    # one generation at a time, each in a worker thread (the event loop stays free)
    assert counter.calls == 6 and counter.max_in_flight == 1
    assert threading.main_thread().name not in counter.threads
    # the recorded answers are the model's greedy answers, and the score is their length
    answers = _ask(LocalChatClient(lm), *(bench.request(item) for item in items))
    lengths = [len(a.text) for a in answers]
    records = [json.loads(x) for x in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    assert {r["id"]: r["predictions"] for r in records} == {
        item["id"]: list(a.texts) for item, a in zip(items, answers, strict=True)
    }
    assert summary["overall"] == pytest.approx(sum(lengths) / len(lengths))


def test_weights_retrained_into_the_same_folder_are_a_new_cache_key(tmp_path):
    """The cache key holds a fingerprint of the folder's files, so answers cached for the old
    weights are not served for new ones written to the same path."""
    write_tiny_causal_lm(tmp_path / "m", seed=0)
    before = LocalChatClient(path=tmp_path / "m").base_url
    assert LocalChatClient(path=tmp_path / "m").base_url == before  # stable while unchanged
    write_tiny_causal_lm(tmp_path / "m", seed=1)
    assert LocalChatClient(path=tmp_path / "m").base_url != before


def test_paperzoo_eval_with_model_local(lm, tmp_path):
    """``paperzoo eval --model-local PATH``: the same run through the command line."""
    from paperzoo.eval.cli import main

    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": str(i)}) + "\n" for i in range(3)))
    out = tmp_path / "out"
    argv = [f"{__name__}:AnswerLength", "--data", str(data), "--out", str(out),
            "--model-local", str(lm), "--cache", str(tmp_path / "c.sqlite")]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored"] == 3 and summary["model"]["name"] == "tiny-lm"
    assert json.loads((out / "run.json").read_text())["model"] == str(lm.resolve())

"""A local backend: open-weight causal LMs and VLMs from a folder, through ``transformers``.

:class:`LocalChatClient` is a drop-in for :class:`~paperzoo.eval.client.ChatClient` (the same
``complete`` / ``model`` / ``concurrency`` / ``usage`` / ``cache`` / ``close``), so a benchmark
runs against a checkpoint on disk as it does against an endpoint:

- the folder is read with ``local_files_only=True``: nothing is downloaded, ever;
- the config says which Auto class loads it: an image-text-to-text model (a VLM, with
  ``AutoProcessor``) or a causal LM (with ``AutoTokenizer``); the request's messages go
  through the tokenizer's or processor's chat template, and data-URL images
  (:func:`~paperzoo.eval.client.image_part`) are decoded into PIL images for a VLM;
- ``temperature == 0`` is greedy; otherwise sampling at that temperature (the model's own
  ``generation_config`` supplies ``top_p`` / ``top_k``, as vLLM does). Sample ``i`` of a request
  is drawn with the seed ``(request.seed or client.seed) + i``, so it does not depend on ``n``
  and a rerun gives the same answers; the caller's global torch RNG is left as it was;
- generation runs in a worker thread (:func:`asyncio.to_thread`), one at a time (a lock;
  ``concurrency`` is 1), so the event loop stays free for the judge;
- tokens are counted into :attr:`usage` at a price of 0, and the same
  :class:`~paperzoo.eval.cache.ResponseCache` is keyed with ``base_url = "local:" + the
  resolved folder + a fingerprint of its files`` (names, sizes, modification times): weights
  retrained into the same folder are a new model to the cache, not stale answers.

The weights are loaded on the first request that the cache cannot answer, so a rerun that the
cache answers entirely never loads the model. Needs the ``local`` extra
(``pip install 'paperzoo-eval[local]'``: transformers, torch, pillow).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperzoo.eval.accounting import Usage
from paperzoo.eval.cache import ResponseCache
from paperzoo.eval.client import ChatRequest, ChatResponse, cached_response, store_response

__all__ = ["LocalChatClient"]


def _import_local() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ImportError(
            "LocalChatClient needs transformers and torch: pip install 'paperzoo-eval[local]'"
        ) from exc
    return torch, transformers


def _decode_image(url: str) -> Any:
    """A PIL image (RGB) from a ``data:image/...;base64,`` URL."""
    from PIL import Image

    if not url.startswith("data:"):
        raise ValueError(
            f"the local backend reads images from data: URLs only, got {url[:40]!r}...; "
            "send the file's bytes with paperzoo.eval.client.image_part(path)"
        )
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise ValueError(f"image data URL is not base64-encoded: {header!r}")
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def _fingerprint(folder: Path) -> str:
    """A short hash of the folder's files (relative name, size, mtime): what the cache key
    needs to tell retrained weights from the old ones, without reading gigabytes."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class LocalChatClient:
    """Chat completions from a model in the folder ``path`` (see the module docstring).

    ``model`` (the name in ``usage`` and ``summary.json``) defaults to the folder's name;
    ``device`` to ``"cuda"`` when available, else ``"cpu"``; ``dtype`` is passed to
    ``from_pretrained`` (``"auto"``: the checkpoint's). ``max_new_tokens`` applies to requests
    without ``max_tokens``; ``seed`` to requests without ``seed``.
    """

    path: str | os.PathLike[str]
    model: str | None = None
    device: str | None = None
    dtype: str = "auto"
    max_new_tokens: int = 512
    seed: int = 0
    cache: ResponseCache | None = None
    usage: Usage = field(default_factory=Usage)
    concurrency: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        _, transformers = _import_local()
        folder = Path(self.path).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"no model in {folder}: expected a folder written by save_pretrained "
                "(config.json, weights, tokenizer or processor)"
            )
        self.path = folder
        self.base_url = f"local:{folder}#{_fingerprint(folder)}"
        self.model = self.model or folder.name
        self.usage.prices.setdefault(self.model, (0.0, 0.0))  # local: tokens cost nothing
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        vlm_types = transformers.models.auto.modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING
        lm_types = transformers.models.auto.modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING
        self.is_vlm = type(config) in vlm_types
        if not self.is_vlm and type(config) not in lm_types:
            raise ValueError(
                f"{folder}: {type(config).__name__} is neither a causal LM nor an "
                "image-text-to-text model that transformers' Auto classes can load"
            )
        self._architecture = (config.architectures or [type(config).__name__])[0]
        self._lock = threading.Lock()
        self._model: Any = None
        self._processor: Any = None  # a processor (VLM) or a tokenizer (causal LM)

    async def close(self) -> None:
        """Drop the weights (after a generation in progress ends, waited for off the loop)."""
        await asyncio.to_thread(self._release)

    def _release(self) -> None:
        with self._lock:
            self._model = self._processor = None

    async def __aenter__(self) -> LocalChatClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The response to ``request``: from the cache, or generated here (in a thread)."""
        assert self.model is not None
        key = request.key(self.model, self.base_url)
        hit = cached_response(self.cache, key, self.usage)
        if hit is not None:
            return hit
        messages, images = self._messages(request)  # before generating: errors come early
        response = await asyncio.to_thread(self._generate, request, messages, images)
        self.usage.requests += 1
        self.usage.add(self.model, response.prompt_tokens, response.completion_tokens)
        store_response(self.cache, key, response)
        return response

    def _messages(self, request: ChatRequest) -> tuple[list[dict[str, Any]], list[Any]]:
        """The messages as the chat template takes them, and the decoded images in order.

        A VLM gets content-part lists (``{"type": "text"}`` / ``{"type": "image"}``); a causal
        LM gets strings (text parts joined by newlines), and an image is an error."""
        messages, images = [], []
        for message in request.messages:
            content = message.get("content")
            if content is None or isinstance(content, str):
                if self.is_vlm and content is not None:
                    content = [{"type": "text", "text": content}]
                messages.append({**message, "content": content})
                continue
            parts: list[dict[str, Any]] = []
            for part in content:
                kind = part.get("type")
                if kind == "text":
                    parts.append({"type": "text", "text": part["text"]})
                elif kind == "image_url":
                    if not self.is_vlm:
                        raise ValueError(
                            f"{self.model} ({self._architecture} in {self.path}) is a text-only "
                            "model and the request has an image: evaluate a vision-language "
                            "model (one AutoModelForImageTextToText loads), or drop the image"
                        )
                    image = _decode_image(part["image_url"]["url"])
                    images.append(image)
                    parts.append({"type": "image", "image": image})
                else:
                    raise ValueError(
                        f"the local backend reads text and image_url content parts, got {kind!r}"
                    )
            if self.is_vlm:
                messages.append({**message, "content": parts})
            else:
                messages.append({**message, "content": "\n".join(p["text"] for p in parts)})
        return messages, images

    def _load(self) -> None:
        torch, transformers = _import_local()
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.is_vlm:
            processor = transformers.AutoProcessor.from_pretrained(self.path, local_files_only=True)
            auto_model = transformers.AutoModelForImageTextToText
        else:
            processor = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            auto_model = transformers.AutoModelForCausalLM
        if getattr(processor, "chat_template", None) is None:
            raise ValueError(
                f"{self.path} has no chat template: save one with the tokenizer/processor "
                "(chat_template.jinja) or use an instruction-tuned checkpoint"
            )
        # transformers 4.56 renamed torch_dtype to dtype
        version = tuple(int(x) for x in transformers.__version__.split(".")[:2])
        dtype = {"dtype" if version >= (4, 56) else "torch_dtype": self.dtype}
        model = auto_model.from_pretrained(self.path, local_files_only=True, **dtype)
        self._model, self._processor, self._device = model.to(device).eval(), processor, device

    def _generate(
        self, request: ChatRequest, messages: list[dict[str, Any]], images: list[Any]
    ) -> ChatResponse:
        """``request.n`` answers, one generation at a time (runs in a worker thread)."""
        torch, _ = _import_local()
        with self._lock, torch.inference_mode():
            if self._model is None:
                self._load()
            inputs = self._processor.apply_chat_template(
                messages,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            ).to(self._device)
            tokenizer = getattr(self._processor, "tokenizer", self._processor)
            prompt_len = int(inputs["input_ids"].shape[1])
            settings: dict[str, Any] = {
                "max_new_tokens": request.max_tokens or self.max_new_tokens,
                "pad_token_id": tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id,
            }
            greedy = request.temperature == 0
            if greedy:
                settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                settings.update(do_sample=True, temperature=request.temperature)
            seed = self.seed if request.seed is None else request.seed
            cuda = torch.device(self._device)
            devices = [cuda.index or 0] if cuda.type == "cuda" else []
            texts, completion_tokens = [], 0
            for i in range(1 if greedy else request.n):  # greedy: the n answers are one
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(seed + i)
                    output = self._model.generate(**inputs, **settings)
                new = output[0, prompt_len:]
                texts.append(tokenizer.decode(new, skip_special_tokens=True))
                completion_tokens += int(new.numel())
            if greedy:
                texts, completion_tokens = texts * request.n, completion_tokens * request.n
        return ChatResponse(tuple(texts), prompt_len, completion_tokens)

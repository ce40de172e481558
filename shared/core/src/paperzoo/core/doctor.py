"""``paperzoo doctor``: what is installed, what can run here, and every plugin's status."""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib import metadata

from paperzoo.core.registry import KINDS, DuplicateNameError, get_registry


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _accelerators() -> list[str]:
    lines = []
    if importlib.util.find_spec("torch") is None:
        return [
            "torch: not installed (listing works; building models needs `paperzoo-core[torch]`)"
        ]
    import torch

    lines.append(f"torch {torch.__version__} (CUDA build {torch.version.cuda or 'none'})")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        lines.append(f"CUDA: available, {torch.cuda.device_count()} device(s): {names}")
    else:
        lines.append("CUDA: not available (CPU only)")
    for dist in ("triton", "xformers", "torchvision", "torchaudio", "av", "timm", "safetensors"):
        v = _version(dist)
        lines.append(f"{dist}: {v or 'not installed'}")
    return lines


def _backends() -> list[str]:
    """Each registered attention backend and whether it can run here (its probe)."""
    from paperzoo.core._imports import resolve

    registry = get_registry()
    try:
        entries = registry.entries("backends")
    except DuplicateNameError as exc:
        return [f"error: {exc}"]
    lines = []
    for name in sorted(entries, key=lambda n: entries[n].spec.priority):
        spec = entries[name].spec
        status = "usable"
        if spec.probe:
            try:
                ok, reason = resolve(spec.probe)()
                status = "usable" if ok else f"unavailable: {reason}"
            except Exception as exc:
                status = f"probe failed: {type(exc).__name__}: {exc}"
        lines.append(f"{name} (priority {spec.priority}, {entries[name].dist}): {status}")
    return lines or ["none registered (install paperzoo-kernels)"]


def report() -> str:
    registry = get_registry()
    out = [
        f"paperzoo-core {_version('paperzoo-core') or '?'}",
        f"python {sys.version.split()[0]} on {platform.platform()}",
        "",
        "accelerators and libraries:",
        *("  " + line for line in _accelerators()),
        "",
        "plugins:",
    ]
    plugins = sorted(registry.plugins.values(), key=lambda p: p.name)
    if not plugins:
        out.append("  none found in entry-point group 'paperzoo'")
    for info in plugins:
        counts = ", ".join(f"{n} {k}" for k, n in info.counts.items() if n)
        line = f"  {info.name:<16} {info.dist} {info.version:<10} {info.status}"
        if info.status == "ok" and counts:
            line += f" ({counts})"
        if info.error:
            line += f": {info.error}"
        out.append(line)
    conflicts = registry.conflicts()
    if conflicts:
        out += ["", "conflicts:", *("  " + c for c in conflicts)]
    if "backends" in KINDS:
        out += ["", "attention backends:", *("  " + line for line in _backends())]
    return "\n".join(out)

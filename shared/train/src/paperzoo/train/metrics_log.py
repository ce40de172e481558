"""Run logs on rank 0: ``metrics.jsonl``, TensorBoard scalars and the loss-curve PNG.

``metrics.jsonl`` has one JSON object per log step (``{"step": 10, "lr": ..., "loss": ...,
"samples_per_sec": ...}``) and one per evaluation (keys prefixed ``eval/``). On resume, lines
past the checkpoint's step are dropped (they belong to the part of the killed run that is
being redone), and TensorBoard purges the same steps.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paperzoo.core.io import atomic_write_text

__all__ = ["MetricsWriter", "plot_loss_curve", "read_metrics"]


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl`` (a torn last line from a kill is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class MetricsWriter:
    """Appends records to ``out_dir/metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(
        self, out_dir: str | os.PathLike[str], *, tensorboard: bool, resume_step: int | None
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / "metrics.jsonl"
        if resume_step is None:
            atomic_write_text(self.path, "")
        else:
            kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = resume_step + 1 if resume_step is not None else None
            self._tb = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=purge)

    def write(self, record: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(dict(record)) + "\n")
        self._fh.flush()
        if self._tb is not None:
            step = int(record["step"])
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key if "/" in key else f"train/{key}", value, step)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _loss_series(records: list[dict]) -> dict[str, tuple[list, list]]:
    """``{"loss": (steps, values)}``, or for a several-optimizer run one ``NAME/loss`` series each."""
    keys = (
        ["loss"]
        if any("loss" in r for r in records)
        else sorted({k for r in records for k in r if k.endswith("/loss")})
    )
    series = {}
    for key in keys:
        rows = [r for r in records if isinstance(r.get(key), (int, float))]
        if rows:
            series[key] = ([r["step"] for r in rows], [r[key] for r in rows])
    return series


def plot_loss_curve(
    metrics_path: str | os.PathLike[str], png_path: str | os.PathLike[str]
) -> Path | None:
    """Plot the loss against step; returns the PNG path, None if no data.

    A one-optimizer run plots ``loss`` with ``lr`` on a second axis; a several-optimizer run
    (a GAN's generator and discriminator) plots each ``NAME/loss`` as its own line.
    """
    records = read_metrics(metrics_path)
    series = _loss_series(records)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, (steps, values) in series.items():
        ax.plot(steps, values, label=key)
    ax.set_xlabel("optimizer step" if "loss" in series else "trainer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if "loss" in series:
        rows = [r for r in records if isinstance(r.get("loss"), (int, float))]
        if all("lr" in r for r in rows):
            ax2 = ax.twinx()
            ax2.plot(series["loss"][0], [r["lr"] for r in rows], color="tab:orange", alpha=0.6)
            ax2.set_ylabel("learning rate")
    else:
        ax.legend()
    ax.set_title("training loss")
    fig.tight_layout()
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
    return png_path

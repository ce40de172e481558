"""Run by torchrun with 2 CPU ranks: multi-view testing, sharded, writes each rank's result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from paperzoo.train import distributed as dist_utils
from paperzoo.train.classification import evaluate_multiview


def main(out: Path) -> None:
    from test_classification import make_views_and_model

    dist_utils.init_distributed(backend="gloo", device="cpu")
    dataset, model, num_classes = make_views_and_model()
    result = evaluate_multiview(model, dataset, num_classes=num_classes, batch_size=4)
    rank = dist_utils.get_rank()
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    dist_utils.barrier()
    dist_utils.destroy_distributed()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(Path(sys.argv[1]))

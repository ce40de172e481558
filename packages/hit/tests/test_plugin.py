"""Discovery through the entry point, and what the recipes and the study declare."""

from __future__ import annotations

import subprocess
import sys

from paperzoo.core import create_model, get_paper, get_recipe, list_models, list_recipes
from paperzoo.hit.recipes import TINY_ARMS, paper_config, tiny_config, tiny_study


def test_models_recipes_and_paper_are_discovered_by_name():
    assert set(list_models("hit_*")) == {"hit_bert_base", "hit_tiny"}
    assert {"hit_tiny", "hit_paper", "hit_paper_activitynet", "hit_paper_lsmdc"} <= set(
        list_recipes()
    )
    assert get_recipe("hit_paper_activitynet").reference == {"t2v_R@1": 29.6}
    assert get_recipe("hit_paper_lsmdc").reference == {"t2v_R@1": 14.0}
    assert get_recipe("hit_tiny").study == "paperzoo.hit.recipes:tiny_study"
    paper = get_paper("hit")
    assert paper.arxiv == "2103.15049"
    assert paper.headline_results["MSR-VTT 1k-A t2v R@1"] == 30.7


def test_create_model_builds_the_tiny_model_with_four_queues():
    model = create_model("hit_tiny", vocab_size=50, queue_size=64)
    assert sorted(model.queues) == [
        "feature_text", "feature_video", "semantic_text", "semantic_video",
    ]  # fmt: skip
    assert all(q.queue.shape == (64, 64) for q in model.queues.values())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert trainable == frozen  # the key copies mirror the query towers


def test_listing_does_not_import_torch():
    code = (
        "import sys; from paperzoo.core import list_models; list_models('hit_*'); "
        "import paperzoo.hit, paperzoo.hit.recipes; "
        "assert 'torch' not in sys.modules, 'listing imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_recipes_and_the_declared_claim():
    paper = paper_config()
    assert paper.data.dataset == "msrvtt" and paper.model == "hit_bert_base"
    assert (paper.hit.queue_size, paper.hit.momentum, paper.hit.temperature) == (65536, 0.999, 0.07)
    tiny = tiny_config()
    assert tiny.eval.split == "test" and tiny.moving_digits.test_fraction > 0
    study = tiny_study()
    assert [a.name for a in study.arms] == list(TINY_ARMS) and study.seeds == (0, 1, 2)
    main = study.claims[0]
    assert (main.arm, main.baseline, main.metric, main.rule) == (
        "hit", "semantic_inbatch", "mean_R@1", "better_mean",
    )  # fmt: skip

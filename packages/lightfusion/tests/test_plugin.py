from paperzoo.core import list_models, list_papers


def test_registered():
    assert "lightfusion" in list_papers()
    assert "lightfusion_base" in list_models("lightfusion*")


def test_the_long_protocol_changes_only_the_fused_phase():
    """lightfusion_tiny_long: the same study (arms, seeds, claims and margins) and config but
    1,200 steps for both arms after the shared pretraining."""
    import dataclasses

    from paperzoo.core import get_recipe, list_recipes
    from paperzoo.lightfusion.recipes import (
        tiny_config,
        tiny_long_config,
        tiny_long_study,
        tiny_study,
    )

    assert {"lightfusion_tiny", "lightfusion_tiny_long"} <= set(list_recipes())
    assert get_recipe("lightfusion_tiny_long").study.endswith(":tiny_long_study")
    short, long = tiny_config(), tiny_long_config()
    assert (short.fusion.max_steps, long.fusion.max_steps) == (300, 1200)
    assert dataclasses.replace(long, fusion=short.fusion) == short
    a, b = tiny_study(), tiny_long_study()
    assert a.claims == b.claims and a.seeds == b.seeds == (0, 1, 2)
    assert [x.overrides for x in a.arms] == [x.overrides for x in b.arms]

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import make_plugin

import paperzoo.core as pz
from paperzoo.core import ModelSpec, PaperSpec, RecipeSpec
from paperzoo.core.registry import DuplicateNameError, UnknownNameError


def _models(*names):
    return [ModelSpec(name=n, factory="collections:OrderedDict", paper="demo") for n in names]


def test_list_and_pattern(registry):
    registry.register(
        make_plugin("a", paperzoo_models=_models("hiera_base_224", "hiera_tiny_224", "x3d_xs"))
    )
    assert pz.list_models() == ["hiera_base_224", "hiera_tiny_224", "x3d_xs"]
    assert pz.list_models("hiera_*") == ["hiera_base_224", "hiera_tiny_224"]
    assert pz.list_models("nope*") == []


def test_unknown_name_suggests_closest(registry):
    registry.register(make_plugin("a", paperzoo_models=_models("hiera_base_224", "hiera_tiny_224")))
    with pytest.raises(UnknownNameError) as err:
        pz.get_model("hiera_bse_224")
    assert "did you mean 'hiera_base_224'" in str(err.value)
    assert err.value.suggestions[0] == "hiera_base_224"


def test_create_model_calls_factory_with_defaults_and_overrides(registry):
    spec = ModelSpec(name="od", factory="collections:OrderedDict", default_args={"a": 1})
    registry.register(make_plugin("a", paperzoo_models=[spec]))
    built = pz.create_model("od", b=2)
    assert dict(built) == {"a": 1, "b": 2}
    assert dict(pz.create_model("od", a=5)) == {"a": 5}


def test_duplicate_names_name_both_distributions(registry):
    registry.register(make_plugin("first", paperzoo_models=_models("m")), dist="dist-one")
    registry.register(make_plugin("second", paperzoo_models=_models("m")), dist="dist-two")
    with pytest.raises(DuplicateNameError) as err:
        pz.list_models()
    assert "dist-one" in str(err.value) and "dist-two" in str(err.value)
    # Other kinds are unaffected by a conflict among models.
    assert pz.list_papers() == []


def test_failing_hook_skips_plugin_with_one_warning(registry):
    from paperzoo.core import hookimpl

    broken = make_plugin("broken")

    @hookimpl
    def paperzoo_models():
        raise RuntimeError("boom")

    broken.paperzoo_models = paperzoo_models
    registry.register(make_plugin("good", paperzoo_models=_models("ok_model")))
    with pytest.warns(pz.PluginLoadWarning, match="broken.*boom") as record:
        registry.register(broken, dist="broken-dist")
    assert len(record) == 1
    assert pz.list_models() == ["ok_model"]
    assert registry.plugins["broken"].status == "failed"
    assert "boom" in registry.plugins["broken"].error


def test_wrong_spec_type_is_a_plugin_failure(registry):
    plugin = make_plugin("p", paperzoo_models=[PaperSpec(name="not-a-model")])
    with pytest.warns(pz.PluginLoadWarning, match="expected ModelSpec"):
        registry.register(plugin)
    assert pz.list_models() == []


def test_recipes_filter_by_paper(registry):
    recipes = [
        RecipeSpec(name="a_tiny", config="m:C", runner="m:run", paper="a"),
        RecipeSpec(name="b_tiny", config="m:C", runner="m:run", paper="b"),
    ]
    registry.register(make_plugin("p", paperzoo_recipes=recipes))
    assert pz.list_recipes() == ["a_tiny", "b_tiny"]
    assert pz.list_recipes(paper="b") == ["b_tiny"]
    assert pz.get_recipe("a_tiny").variant == "tiny"


def test_specs_validate_import_strings():
    with pytest.raises(ValueError, match="import string"):
        ModelSpec(name="x", factory="no_colon")
    with pytest.raises(ValueError, match="factory"):
        ModelSpec(name="x")
    spec = ModelSpec(name="x", factory="a.b:c")
    with pytest.raises(AttributeError):
        spec.name = "y"  # frozen


def test_listing_does_not_import_torch():
    """Discovery of every installed plugin must not import torch (run in a clean process)."""
    code = textwrap.dedent(
        """
        import sys, paperzoo.core as pz
        pz.list_models(); pz.list_papers(); pz.list_recipes(); pz.list_backends()
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr

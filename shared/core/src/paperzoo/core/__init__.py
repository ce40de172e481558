"""paperzoo.core: the plugin system every paperzoo paper package registers against.

Plugin authors need only this module::

    from paperzoo.core import hookimpl, ModelSpec, PaperSpec, RecipeSpec

    @hookimpl
    def paperzoo_models():
        return [ModelSpec(name="hiera_base_224", factory="paperzoo.hiera.model:hiera_base_224")]

Host applications use the functions: ``list_models``, ``create_model``, ``get_recipe``, ...
Importing this module never imports torch.
"""

from paperzoo.core.api import (
    create_dataset,
    create_method,
    create_metric,
    create_model,
    get_backend,
    get_command,
    get_dataset,
    get_method,
    get_metric,
    get_model,
    get_paper,
    get_recipe,
    list_backends,
    list_commands,
    list_datasets,
    list_methods,
    list_metrics,
    list_models,
    list_papers,
    list_recipes,
)
from paperzoo.core.config import (
    ConfigError,
    DataConfig,
    OptimConfig,
    TrainerConfig,
    apply_overrides,
)
from paperzoo.core.hookspecs import hookimpl, hookspec
from paperzoo.core.registry import (
    DuplicateNameError,
    PluginLoadWarning,
    UnknownNameError,
    get_registry,
    reload_plugins,
)
from paperzoo.core.run import RunContext, RunResult
from paperzoo.core.specs import (
    BackendSpec,
    CommandSpec,
    DatasetSpec,
    MethodSpec,
    MetricSpec,
    ModelSpec,
    PaperSpec,
    RecipeSpec,
)

__all__ = [
    "BackendSpec",
    "CommandSpec",
    "ConfigError",
    "DataConfig",
    "DatasetSpec",
    "DuplicateNameError",
    "MethodSpec",
    "MetricSpec",
    "ModelSpec",
    "OptimConfig",
    "PaperSpec",
    "PluginLoadWarning",
    "RecipeSpec",
    "RunContext",
    "RunResult",
    "TrainerConfig",
    "UnknownNameError",
    "apply_overrides",
    "create_dataset",
    "create_method",
    "create_metric",
    "create_model",
    "get_backend",
    "get_command",
    "get_dataset",
    "get_method",
    "get_metric",
    "get_model",
    "get_paper",
    "get_recipe",
    "get_registry",
    "hookimpl",
    "hookspec",
    "list_backends",
    "list_commands",
    "list_datasets",
    "list_methods",
    "list_metrics",
    "list_models",
    "list_papers",
    "list_recipes",
    "reload_plugins",
]

"""paperzoo.omni: Context Unrolling in Omni Models (Yang et al. 2026, arXiv:2604.21921) at small
scale. Importing this package stays light (no torch); the model lives in
:mod:`paperzoo.omni.model`, the renderer in :mod:`paperzoo.omni.render`."""

__all__: list[str] = []

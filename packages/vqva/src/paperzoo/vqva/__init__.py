"""paperzoo-vqva."""

__version__ = "0.1.0"

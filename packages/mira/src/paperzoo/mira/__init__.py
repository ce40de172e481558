"""paperzoo-mira: the MIRA benchmark (arXiv:2511.02779) through ``paperzoo eval mira``.

- :mod:`paperzoo.mira.layout`: the official data layout, the 20 tasks and their aspects, the
  tiny data set shipped here (:data:`~paperzoo.mira.layout.TINY`);
- :mod:`paperzoo.mira.scoring`: ``<answer>`` extraction, exact match, the judge verdict,
  pass@k, majority vote;
- :mod:`paperzoo.mira.benchmark`: :class:`~paperzoo.mira.benchmark.Mira`, the benchmark.
"""

__version__ = "0.1.0"

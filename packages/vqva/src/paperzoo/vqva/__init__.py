"""paperzoo-vqva: VQ-VA World and IntelligentBench (Gou et al., arXiv 2511.20573).

- :mod:`paperzoo.vqva.benchmark`: IntelligentBench on the official parquet and judge rubric
  (``paperzoo eval intelligentbench --data P --predictions F --out D --judge-...``);
- :mod:`paperzoo.vqva.pipeline`: the data pipeline (classify, retriever, filter, instruction
  generator, rewriter, reasoner) as resumable parquet steps (``paperzoo vqva-pipeline``);
- :mod:`paperzoo.vqva.tiny`: both, end to end, on the shipped tiny data against scripted
  servers (``python -m paperzoo.vqva.tiny OUT``).
"""

__version__ = "0.1.0"

"""ECHOES Lab: the library heritage scientists import in their notebooks.

One way in: open a dataset, analyse it with accessors (``ds.climate``, ``df.records``),
get a cluster, run a notebook.
"""

from echoes_lab._version import __version__
from echoes_lab import errors
from echoes_lab.datasets import catalog, open_dataset

__all__ = ["__version__", "catalog", "errors", "open_dataset"]

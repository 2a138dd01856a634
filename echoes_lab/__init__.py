"""ECHOES Lab: the library heritage scientists import in their notebooks.

One way in: open a dataset, analyse it with accessors (``ds.climate``, ``df.records``),
get a cluster, run a notebook.

>>> import echoes_lab
>>> objects = echoes_lab.read_records("export.csv", preset="tate")   # doctest: +SKIP
>>> objects.records.quality()                                         # doctest: +SKIP
"""

from echoes_lab._version import __version__
from echoes_lab import errors
from echoes_lab.datasets import catalog, open_dataset
from echoes_lab.dates import parse as parse_date
from echoes_lab.records import harvest_oai, read as read_records
from echoes_lab import widgets

__all__ = ["__version__", "catalog", "errors", "harvest_oai", "open_dataset", "parse_date", "read_records",
           "widgets"]

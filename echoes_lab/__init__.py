"""ECHOES Lab: the library heritage scientists import in their notebooks.

One way in: open a dataset, analyse it with accessors (``ds.climate``, ``df.records``),
get a cluster, run a notebook.

>>> import echoes_lab
>>> objects = echoes_lab.read_records("export.csv", preset="tate")   # doctest: +SKIP
>>> objects.records.quality()                                         # doctest: +SKIP
"""

from echoes_lab._version import __version__
from echoes_lab import errors, widgets

# open a dataset
from echoes_lab.datasets import catalog, open_dataset
from echoes_lab.records import harvest_oai, read as read_records  # registers df.records
from echoes_lab.dates import parse as parse_date
from echoes_lab.loggers import read_climate
from echoes_lab.colour import read_spectra
from echoes_lab.spectral import read_cube  # registers ds.spectral

# analyse it
from echoes_lab import climate  # registers ds.climate
from echoes_lab.colour import blue_wool, delta_e, fading, to_lab  # registers df.colour

# get a cluster, run a notebook
from echoes_lab import compute
from echoes_lab.runs import run as run_notebook

__all__ = [
    "__version__", "errors", "widgets",
    "catalog", "open_dataset", "harvest_oai", "read_records", "parse_date", "read_climate",
    "read_spectra", "read_cube",
    "climate", "blue_wool", "delta_e", "fading", "to_lab",
    "compute", "run_notebook",
]

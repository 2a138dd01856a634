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
from echoes_lab.colour import blue_wool, delta_e, fading, read_spectra, to_lab  # registers df.colour
from echoes_lab.spectral import read_cube  # registers ds.spectral
from echoes_lab import compute
from echoes_lab.loggers import read_climate
from echoes_lab import climate  # registers ds.climate

__all__ = ["__version__", "catalog", "compute", "errors", "harvest_oai", "open_dataset", "parse_date", "read_records",
           "widgets"]
__all__ += ["blue_wool", "delta_e", "fading", "read_cube", "read_spectra", "to_lab"]
__all__ += ["climate", "read_climate"]
from echoes_lab.runs import run as run_notebook  # echoes_lab.runs: Papermill + RO-Crate
__all__ += ["run_notebook"]

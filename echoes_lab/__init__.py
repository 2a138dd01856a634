"""ECHOES Lab: the library heritage scientists import in their notebooks.

One way in: open a dataset, analyse it with accessors (``ds.climate``, ``df.records``),
get a cluster, run a notebook.

>>> import echoes_lab
>>> objects = echoes_lab.read_records("export.csv", preset="tate")   # doctest: +SKIP
>>> objects.records.quality()                                         # doctest: +SKIP

``import echoes_lab`` itself loads nothing of the science stack: each public name is looked up
on first use (PEP 562 module ``__getattr__``), so a user server or a kernel that never reads a
collection never pays for pandas, xarray, dask or matplotlib. The accessors (``df.records``,
``df.colour``, ``ds.climate``, ``ds.spectral``) are registered as soon as pandas or xarray is
imported, whoever imports it (:mod:`echoes_lab._accessors`).
"""

from __future__ import annotations

import importlib

from echoes_lab._version import __version__

#: public name -> (module, attribute or None for the module itself); the four verbs in order
_LAZY: dict[str, tuple[str, str | None]] = {
    "errors": ("echoes_lab.errors", None),
    "i18n": ("echoes_lab.i18n", None),
    "widgets": ("echoes_lab.widgets", None),
    # the modules themselves, as the README names them (echoes_lab.spectral.read_library, ...)
    "collections": ("echoes_lab.collections", None),
    "colour": ("echoes_lab.colour", None),
    "datasets": ("echoes_lab.datasets", None),
    "demo": ("echoes_lab.demo", None),
    "runs": ("echoes_lab.runs", None),
    "spectral": ("echoes_lab.spectral", None),
    # open a dataset
    "catalog": ("echoes_lab.datasets", "catalog"),
    "open_dataset": ("echoes_lab.datasets", "open_dataset"),
    "harvest_oai": ("echoes_lab.collections.records", "harvest_oai"),
    "read_records": ("echoes_lab.collections.records", "read"),
    "parse_date": ("echoes_lab.collections.dates", "parse"),
    "read_climate": ("echoes_lab.climate.readers", "read_climate"),
    "read_spectra": ("echoes_lab.spectral", "read_spectra"),
    "read_cube": ("echoes_lab.spectral", "read_cube"),
    "read_timed": ("echoes_lab.media.timed", "read_timed"),
    "read_sites": ("echoes_lab.sites.readers", "read_sites"),
    "sites": ("echoes_lab.sites", None),
    "media": ("echoes_lab.media", None),
    # analyse it
    "climate": ("echoes_lab.climate", None),
    "blue_wool": ("echoes_lab.colour", "blue_wool"),
    "delta_e": ("echoes_lab.colour", "delta_e"),
    "fading": ("echoes_lab.colour", "fading"),
    "to_lab": ("echoes_lab.colour", "to_lab"),
    # get a cluster, run a notebook
    "compute": ("echoes_lab.compute", None),
    "run_notebook": ("echoes_lab.runs", "run"),
    # annotate it: the digital commons
    "commons": ("echoes_lab.commons", None),
    "share": ("echoes_lab.sharing", "share"),
    "sharing": ("echoes_lab.sharing", None),  # sharing.shares(), sharing.revoke()
    # ask the knowledge base: Linked Art, annotations, runs in one graph (SPARQL)
    "knowledge": ("echoes_lab.knowledge", None),
    # is what the lab publishes FAIR? (FAIRsFAIR indicators, offline)
    "fair": ("echoes_lab.fair", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        msg = f"module 'echoes_lab' has no attribute '{name}'"
        raise AttributeError(msg) from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


from echoes_lab import _accessors  # noqa: E402  (registers accessors when pandas/xarray load)

_accessors.install()

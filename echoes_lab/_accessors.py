"""The accessors ``df.records``, ``df.colour``, ``ds.climate``, ``ds.spectral``, ``da.colour``.

Registered the moment pandas or xarray is imported (now, if it already is), by a post-import
hook, so ``import echoes_lab`` costs nothing and ``ds.climate`` still works on any Dataset. The
module that implements an accessor is imported on its first use, not at registration: a
kernel that only reads a CSV never imports matplotlib or dask. The rules are a table.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: library -> (register function, accessor name, implementing module, class)
RULES: dict[str, list[tuple[str, str, str, str]]] = {
    "pandas": [
        ("pandas.api.extensions:register_dataframe_accessor", "records",
         "echoes_lab.collections.records", "RecordsAccessor"),
        ("pandas.api.extensions:register_dataframe_accessor", "colour",
         "echoes_lab.colour", "ColourFrameAccessor"),
        # gdf.sites: a GeoDataFrame is a DataFrame, so the pandas registration reaches it
        ("pandas.api.extensions:register_dataframe_accessor", "sites",
         "echoes_lab.sites", "SitesAccessor"),
    ],
    "xarray": [
        ("xarray:register_dataset_accessor", "climate", "echoes_lab.climate.metrics",
         "ClimateAccessor"),
        ("xarray:register_dataset_accessor", "spectral", "echoes_lab.spectral",
         "SpectralAccessor"),
        ("xarray:register_dataarray_accessor", "colour", "echoes_lab.colour",
         "ColourArrayAccessor"),
    ],
}


def _deferred(module: str, cls: str) -> type:
    """A class standing for ``module.cls``: constructing it imports the module."""

    class Deferred:
        def __new__(cls_, obj):  # noqa: N804  (pandas and xarray call accessor(obj))
            return getattr(importlib.import_module(module), cls)(obj)

    Deferred.__qualname__ = Deferred.__name__ = cls
    return Deferred


def _register(library: str) -> None:
    for register, name, module, cls in RULES[library]:
        mod, func = register.split(":")
        getattr(importlib.import_module(mod), func)(name)(_deferred(module, cls))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs :func:`_register` once pandas or xarray has finished importing."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in RULES:
            return None
        sys.meta_path.remove(self)  # find the real spec with the other finders
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register(fullname)

        spec.loader.exec_module = exec_then_register
        return spec


def install() -> None:
    """Register now for what is imported, and on import for the rest (idempotent)."""
    if any(isinstance(f, _AfterImport) for f in sys.meta_path):
        return
    for library in RULES:
        if library in sys.modules:
            _register(library)
    if not all(library in sys.modules for library in RULES):
        sys.meta_path.insert(0, _AfterImport())

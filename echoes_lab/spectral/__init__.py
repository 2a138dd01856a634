"""Multispectral and hyperspectral image cubes: read, select, composite, PCA/MNF, SAM, regions.

A cube is an xarray Dataset with ``reflectance(y, x, band)`` and a ``wavelength`` coordinate
on ``band`` (nm), lazily dask-chunked when asked, so cubes larger than memory work.
:func:`read_cube` reads ENVI (``.hdr`` + raw; header parsed with Spectral Python), multi-page
TIFF stacks (tifffile), NetCDF and Zarr. The ``ds.spectral`` accessor then offers:

* ``band`` / ``select``: bands by wavelength; ``composite`` / ``irfc``: false-colour images
  (infrared false colour after Cosentino 2014, *Heritage Science* 2:8); ``ratio``;
* ``pca`` and ``mnf``: principal components (Jolliffe 2002) and the minimum noise fraction
  (Green et al. 1988, *IEEE TGRS* 26(1):65–74), computed out of core: the band×band
  covariance is accumulated chunk by chunk by dask, then decomposed with ``numpy.linalg.eigh``;
* ``sam``: the spectral angle mapper against a library of reference spectra (Kruse et al.
  1993, *Remote Sens. Environ.* 44:145–163);
* ``region_stats``: per-band statistics inside a mask or labelled regions;
* ``show`` / ``plot_spectra``: matplotlib display helpers.

Point spectra (one reflectance curve per measurement) come from :func:`read_spectra`, the
one reader of spectra (also ``echoes_lab.read_spectra``, ``echoes_lab.colour.read_spectra``),
which detects the layout of instrument exports and reference libraries — CGATS.17 and
ArgyllCMS, Ocean Optics SpectraSuite/OceanView, ASD, Avantes AvaSoft, Spectra Vista ``.sig``,
ECOSTRESS/ASTER and USGS splib ASCII, ENVI ASCII plots and ENVI spectral libraries
(:func:`read_library`), or reads a CSV table or DataFrame — says what it detected in
``attrs["layout"]`` and validates the values (:func:`echoes_lab.colour.spectra_from_table`);
:func:`read_spectrum_table` gives the raw values of exports that are not reflectance.

The modules: :mod:`~echoes_lab.spectral.cubes` (image cubes), :mod:`~.libraries` (ENVI
spectral libraries), :mod:`~.instruments` (the layouts of point-spectrum exports),
:mod:`~.readers` (:func:`read_spectra`), :mod:`~.analysis` (PCA, MNF, SAM, regions),
:mod:`~.plots` and :mod:`~.accessor` (``ds.spectral``).
"""

from echoes_lab.spectral.accessor import SpectralAccessor
from echoes_lab.spectral.analysis import mnf, pca, region_stats, sam
from echoes_lab.spectral.cubes import VAR, read_cube, read_envi
from echoes_lab.spectral.libraries import read_library
from echoes_lab.spectral.readers import read_spectra, read_spectrum_table

__all__ = ["VAR", "SpectralAccessor", "mnf", "pca", "read_cube", "read_envi", "read_library",
           "read_spectra", "read_spectrum_table", "region_stats", "sam"]

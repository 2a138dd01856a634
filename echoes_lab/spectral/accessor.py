"""``ds.spectral``: the accessor of cube Datasets (registered by :mod:`echoes_lab._accessors`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.errors import SpectralError
from echoes_lab.spectral import plots
from echoes_lab.spectral.analysis import cube_of, mnf, pca, region_stats, sam


class SpectralAccessor:
    """``ds.spectral``: analyses of a cube Dataset from :func:`read_cube`."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def cube(self) -> xr.DataArray:
        return cube_of(self._ds)

    def band(self, wavelength: float, tolerance: float | None = None) -> xr.DataArray:
        """The band nearest ``wavelength`` nm as an image (y, x); refused beyond ``tolerance``
        nm."""
        arr = self.cube
        wl = np.asarray(arr["wavelength"], dtype=float)
        i = int(np.argmin(np.abs(wl - wavelength)))
        if tolerance is not None and abs(wl[i] - wavelength) > tolerance:
            msg = f"no band within {tolerance:g} nm of {wavelength:g} nm (nearest {wl[i]:g} nm)"
            raise SpectralError(msg)
        return arr.isel(band=i)

    def select(self, start: float, stop: float) -> xr.Dataset:
        """The bands with ``start ≤ wavelength ≤ stop`` nm."""
        wl = np.asarray(self.cube["wavelength"], dtype=float)
        keep = (wl >= start) & (wl <= stop)
        if not keep.any():
            msg = f"no band between {start:g} and {stop:g} nm (bands {wl.min():g}–{wl.max():g} nm)"
            raise SpectralError(msg)
        return self._ds.isel(band=np.nonzero(keep)[0])

    def composite(self, red: float, green: float, blue: float, stretch=(2, 98)) -> xr.DataArray:
        """A three-band false-colour image (y, x, rgb) in 0–1 from the bands nearest the
        wavelengths,
        each channel stretched between the given percentiles."""
        rgb = np.stack([np.asarray(self.band(w)) for w in (red, green, blue)], axis=-1)
        out = xr.DataArray(
            plots.stretch(rgb, *stretch),
            dims=("y", "x", "rgb"),
            coords={"y": self.cube["y"], "x": self.cube["x"], "rgb": ["R", "G", "B"]},
        )
        out.attrs["bands_nm"] = [float(self.band(w)["wavelength"]) for w in (red, green, blue)]
        return out

    def irfc(
        self, infrared: float = 900.0, red: float = 650.0, green: float = 550.0, stretch=(2, 98)
    ) -> xr.DataArray:
        """Infrared false colour: infrared → red, red → green, green → blue (Cosentino 2014,
        *Heritage Science* 2:8), which tells apart pigments that look alike in the visible."""
        return self.composite(infrared, red, green, stretch)

    def ratio(self, numerator: float, denominator: float) -> xr.DataArray:
        """Band ratio image ``R(λ₁) / R(λ₂)``; NaN where the denominator is 0."""
        num, den = self.band(numerator), self.band(denominator)
        return (num / den.where(den != 0)).rename(
            f"ratio {float(num['wavelength']):g}/{float(den['wavelength']):g}"
        )

    def pca(self, n_components: int | None = None) -> xr.Dataset:
        """Principal components (see :func:`pca`)."""
        return pca(self._ds, n_components)

    def mnf(self, n_components: int | None = None) -> xr.Dataset:
        """Minimum noise fraction (see :func:`mnf`)."""
        return mnf(self._ds, n_components)

    def sam(self, library, threshold: float | None = None) -> xr.Dataset:
        """Spectral angle mapper (see :func:`sam`)."""
        return sam(self._ds, library, threshold)

    def region_stats(self, mask) -> pd.DataFrame:
        """Per-band statistics inside a mask or labels (see :func:`region_stats`)."""
        return region_stats(self._ds, mask)

    def show(self, image=None, ax=None, stretch=(2, 98), title: str | None = None, **kwargs):
        """Display an image: an (y, x, rgb) composite, an (y, x) band, or by default an IRFC."""
        image = self.irfc() if image is None else image
        aspect = self.cube.sizes["y"] / self.cube.sizes["x"]
        return plots.show(image, aspect, ax=ax, stretch_pct=stretch, title=title, **kwargs)

    def plot_spectra(self, mask, ax=None, names: dict | None = None):
        """Mean spectrum ± one standard deviation of every region of ``mask`` against wavelength."""
        return plots.plot_spectra(self.region_stats(mask), ax=ax, names=names)

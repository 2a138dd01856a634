"""Display helpers of cubes (matplotlib, imported when a figure is drawn): images with a
percentile contrast stretch, mean spectra of regions."""

from __future__ import annotations

import numpy as np
import pandas as pd


def stretch(img: np.ndarray, low: float, high: float) -> np.ndarray:
    """Percentile contrast stretch to 0–1, each channel separately."""
    img = np.asarray(img, dtype=float)
    flat = img.reshape(-1, img.shape[-1]) if img.ndim == 3 else img.reshape(-1, 1)
    lo, hi = np.nanpercentile(flat, [low, high], axis=0)
    out = (img - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.clip(out, 0, 1)


def show(image, aspect: float, ax=None, stretch_pct=(2, 98), title: str | None = None,
         **kwargs):
    """Display an (y, x, rgb) composite, or an (y, x) band stretched in grey; ``aspect`` is the
    cube's height / width, for a new figure."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 6 * aspect))[1]
    values = np.asarray(image)
    if values.ndim == 2:
        kwargs.setdefault("cmap", "gray")
        values = stretch(values, *stretch_pct)
    ax.imshow(values, **kwargs)
    ax.set_axis_off()
    if title or getattr(image, "name", None):
        ax.set_title(title or image.name)
    return ax


def plot_spectra(stats: pd.DataFrame, ax=None, names: dict | None = None):
    """Mean spectrum ± one standard deviation of every region of ``stats`` (from
    :func:`echoes_lab.spectral.region_stats`) against wavelength."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 4))[1]
    for region, g in stats.groupby("region"):
        label = (names or {}).get(region, f"region {region}")
        ax.plot(g["wavelength"], g["mean"], label=label)
        ax.fill_between(g["wavelength"], g["mean"] - g["std"], g["mean"] + g["std"], alpha=0.2)
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel("reflectance")
    ax.legend(fontsize="small")
    return ax

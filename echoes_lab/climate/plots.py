"""Climate plots a conservator can read: a chart with its band, a psychrometric scatter and a
risk dashboard per room. Each returns the matplotlib Figure (the notebook shows it).

Large or dask-backed data are reduced first (daily minimum/mean/maximum; a sample of at most
``max_points`` readings for the scatter), so a plot never loads the whole record.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.climate import metrics as climate

RATING_COLOURS = {"GOOD": "#1a9850", "OK": "#fdae61", "RISK": "#d73027"}


def _one(ds: xr.Dataset, sensor) -> tuple[xr.Dataset, str]:
    if sensor is None:
        sensor = ds["sensor"].values[0]
    return ds.sel(sensor=sensor), str(sensor)


def climate_chart(
    ds: xr.Dataset,
    sensor=None,
    start=None,
    end=None,
    t_band=(16.0, 25.0),
    rh_band=(40.0, 60.0),
    en15757: bool = True,
):
    """Temperature and RH of one sensor: daily range and mean, the agreed band (green) and, for
    RH, the EN 15757 band (dashed) with its excursions marked (red dots)."""
    one, name = _one(ds, sensor)
    band = one.expand_dims("sensor").climate.en15757().isel(sensor=0) if en15757 else None
    one = one.sel(time=slice(start, end))
    daily = one.expand_dims("sensor").climate.summary("D").isel(sensor=0).compute()
    fig, (ax_t, ax_rh) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, constrained_layout=True)
    for ax, var, agreed, unit in [
        (ax_t, "temperature", t_band, "°C"),
        (ax_rh, "relative_humidity", rh_band, "%"),
    ]:
        ax.axhspan(*agreed, color="tab:green", alpha=0.10, label="agreed band")
        ax.fill_between(
            daily["time"].values,
            daily[f"{var}_min"],
            daily[f"{var}_max"],
            color="tab:blue",
            alpha=0.25,
            lw=0,
            label="daily range",
        )
        ax.plot(
            daily["time"].values, daily[f"{var}_mean"], color="tab:blue", lw=1, label="daily mean"
        )
        ax.set_ylabel(f"{var.replace('_', ' ')} ({unit})")
        ax.grid(alpha=0.3)
    if band is not None:
        b = band.sel(time=slice(start, end)).compute()
        lower = b["lower"].resample(time="1D").mean()
        upper = b["upper"].resample(time="1D").mean()
        ax_rh.plot(lower["time"].values, lower, "k--", lw=0.8, label="EN 15757 band")
        ax_rh.plot(upper["time"].values, upper, "k--", lw=0.8)
        rh = one["relative_humidity"].compute()
        out = b["excursion"].values.astype(bool)
        if out.any():
            ax_rh.plot(
                rh["time"].values[out],
                rh.values[out],
                ".",
                color="tab:red",
                ms=2,
                label="excursion",
            )
    room = f" ({one['room'].item()})" if "room" in one.coords else ""
    ax_t.set_title(f"{name}{room}")
    ax_rh.legend(loc="upper left", ncols=5, fontsize="small")
    return fig


def psychrometric_scatter(
    ds: xr.Dataset, sensors=None, max_points: int = 20000, t_range=(0.0, 35.0)
):
    """Readings on a psychrometric chart: temperature against humidity ratio (g/kg), with lines
    of constant RH (ASHRAE Fundamentals ch. 1 psychrometrics, sea-level pressure) and the mould
    limit (see :func:`echoes_lab.climate.metrics.mould_rh_limit`)."""
    sel = ds if sensors is None else ds.sel(sensor=list(np.atleast_1d(sensors)))
    fig, ax = plt.subplots(figsize=(8, 5.5), constrained_layout=True)
    t_axis = np.linspace(*t_range, 200)
    for rh in range(10, 101, 10):
        w = climate.mixing_ratio(t_axis, rh)
        ax.plot(t_axis, w, color="grey", lw=0.6 if rh < 100 else 1.2)
        ax.annotate(f"{rh}%", (t_axis[-1], w[-1]), fontsize=7, color="grey", va="center")
    ax.plot(
        t_axis,
        climate.mixing_ratio(t_axis, climate.mould_rh_limit(t_axis)),
        color="tab:red",
        lw=1.2,
        ls="--",
        label="mould limit (LIM0)",
    )
    step = max(1, int(sel.sizes["time"] * sel.sizes["sensor"] // max_points))
    for s in sel["sensor"].values:
        one = sel.sel(sensor=s).isel(time=slice(None, None, step)).compute()
        w = climate.mixing_ratio(one["temperature"], one["relative_humidity"])
        label = f"{s} ({one['room'].item()})" if "room" in one.coords else str(s)
        ax.scatter(one["temperature"], w, s=2, alpha=0.3, label=label)
    ax.set_xlim(*t_range)
    ax.set_ylim(0, climate.mixing_ratio(t_range[1], 100.0) * 1.02)
    ax.set_xlabel("temperature (°C)")
    ax.set_ylabel("humidity ratio (g water / kg dry air)")
    ax.set_title("Psychrometric chart (lines: relative humidity)")
    ax.legend(markerscale=5, fontsize="small", loc="upper left")
    return fig


def risk_dashboard(ds: xr.Dataset, table: pd.DataFrame | None = None, **kwargs):
    """One panel per metric, one bar per room (averaged over its sensors), coloured by IPI
    rating: TWPI (natural ageing), wood EMC range (mechanical), hours at mould risk, EN 15757
    excursions, time in the agreed band."""
    table = ds.climate.risk_table(**kwargs) if table is None else table
    by = table.groupby("room") if "room" in table else table.groupby(level=0)
    rooms = by.agg(
        {
            "TWPI (years)": "mean",
            "EMC min": "min",
            "EMC max": "max",
            "mould risk (h)": "sum",
            "EN 15757 excursions": "mean",
            "in band (both)": "mean",
        }
    )
    fig, axes = plt.subplots(
        1, 5, figsize=(15, 0.6 * len(rooms) + 2), sharey=True, constrained_layout=True
    )
    y = np.arange(len(rooms))
    twpi = rooms["TWPI (years)"]
    axes[0].barh(
        y,
        twpi,
        color=[
            RATING_COLOURS[
                "GOOD" if v >= climate.TWPI_GOOD else "OK" if v >= climate.TWPI_OK else "RISK"
            ]
            for v in twpi
        ],
    )
    axes[0].axvline(climate.TWPI_OK, color="k", lw=0.6, ls=":")
    axes[0].axvline(climate.TWPI_GOOD, color="k", lw=0.6, ls=":")
    axes[0].set_title("natural ageing: TWPI (years)")
    ok = (rooms["EMC min"] >= climate.EMC_OK[0]) & (rooms["EMC max"] <= climate.EMC_OK[1])
    axes[1].barh(
        y,
        rooms["EMC max"] - rooms["EMC min"],
        left=rooms["EMC min"],
        color=[RATING_COLOURS["GOOD" if o else "RISK"] for o in ok],
    )
    axes[1].axvspan(*climate.EMC_OK, color="tab:green", alpha=0.1)
    axes[1].set_title("mechanical: wood EMC range (%)")
    axes[2].barh(
        y,
        rooms["mould risk (h)"],
        color=[RATING_COLOURS["RISK" if v > 0 else "GOOD"] for v in rooms["mould risk (h)"]],
    )
    axes[2].set_title("mould: hours at risk")
    axes[3].barh(y, 100 * rooms["EN 15757 excursions"], color="tab:purple")
    axes[3].set_title("EN 15757 excursions (% of time)")
    axes[4].barh(y, 100 * rooms["in band (both)"], color="tab:blue")
    axes[4].set_xlim(0, 100)
    axes[4].set_title("T and RH in agreed band (%)")
    axes[0].set_yticks(y, rooms.index)
    for ax in axes[2:4]:
        ax.set_xlim(0, max(1.0, ax.get_xlim()[1]))
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    return fig

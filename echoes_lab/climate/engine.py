"""One pass for every climate metric: the engine behind ``ds.climate.risk_table()`` and
``ds.climate.ashrae()``.

The per-reading definitions stay in :mod:`echoes_lab.climate.metrics` (each formula with its
reference); this module evaluates all of them together, block by block of sensors, so that a
national network of loggers is analysed in bounded memory and at the speed of the hardware:

1. per block of sensors (whole records, the library chooses the block: ``BLOCK_BYTES`` per
   variable), the 30-day centred moving means of T and RH in O(n) (running sums, the same
   arithmetic as :func:`~echoes_lab.climate.metrics.moving_average`), the record means and the
   EN 15757 percentiles of the RH fluctuations (xarray's own reductions, as the accessor's);
2. one fused loop over the readings (numba, compiled once and cached) that evaluates dew
   point, wood EMC, the IPI preservation index, mould risk, the EN 15757 band, the six ASHRAE
   classes and the agreed band at each reading and keeps only what the tables need: counts,
   minima, maxima, sums, per period shares and first failures.

Nothing per reading is ever stored beyond the block being worked on. Blocks are dask tasks:
the same call runs on the threads of a laptop, on a ``LocalCluster`` or on a Dask Gateway
cluster (one task per block, so workers share the blocks), with a progress bar in notebooks
and a log line per stage in scripts. ``tests/test_climate_engine.py`` holds the previous,
array-at-a-time implementation as the oracle: the two agree to 1e-9.
"""

from __future__ import annotations

import logging
import math
import time

import numba
import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.climate import metrics as m

log = logging.getLogger("echoes_lab.climate")

#: bytes of one variable in one block (a block is whole records of a few sensors)
BLOCK_BYTES = 64 * 2**20

#: ASHRAE classes as table columns (metrics.ASHRAE_CLASSES, with "no limit" as ±inf)
_CLASS_FIELDS = (
    "precision",
    "rh_short",
    "rh_up",
    "rh_down",
    "t_short",
    "t_up",
    "t_down",
    "rh_min",
    "rh_max",
    "rh_max_inclusive",
    "t_max",
)


def _class_table() -> np.ndarray:
    rows = []
    for name, spec in m.ASHRAE_CLASSES.items():
        precision = "rh_short" in spec
        t_down = spec.get("t_down", 0)
        rows.append(
            [
                float(precision),
                spec.get("rh_short", 0),
                spec.get("rh_up", 0),
                spec.get("rh_down", 0),
                spec.get("t_short", 0),
                spec.get("t_up", 0),
                math.inf if t_down is None else t_down,
                spec.get("rh_min", -math.inf),
                spec.get("rh_max", math.inf),
                float(name == "C"),  # class C allows RH = 75 %, the others need RH < 75 %
                spec.get("t_max", math.inf),
            ]
        )
    return np.array(rows, dtype=np.float64)


# -- the kernels --------------------------------------------------------------------------------


@numba.njit(nogil=True, cache=True)
def _centred_means(x, half, out):  # pragma: no cover - compiled
    """Row-wise centred moving mean over ``2·half + 1`` steps, NaN skipped, at least ``half``
    valid readings: exactly :func:`echoes_lab.climate.metrics._centred_mean`'s arithmetic
    (sequential running sums, then ``(S[hi] − S[lo]) / count``)."""
    s, n = x.shape
    sums = np.empty(n + 1)
    counts = np.empty(n + 1, dtype=np.int64)
    for i in range(s):
        sums[0] = 0.0
        counts[0] = 0
        for j in range(n):
            v = x[i, j]
            if v == v:
                sums[j + 1] = sums[j] + v
                counts[j + 1] = counts[j] + 1
            else:
                sums[j + 1] = sums[j] + 0.0
                counts[j + 1] = counts[j]
        for j in range(n):
            hi = min(j + half + 1, n)
            lo = max(j - half, 0)
            c = counts[hi] - counts[lo]
            out[i, j] = (sums[hi] - sums[lo]) / c if c >= half and c > 0 else np.nan


@numba.njit(nogil=True, cache=True)
def _fused(t, rh, ts, rhs, quality, t_mean, rh_mean, low, high, group, n_groups, seconds, classes,
           setpoint, t_band, rh_band):  # pragma: no cover - compiled
    """Every per-reading metric at once; returns the per-sensor and per-period accumulators.

    The expressions are those of :mod:`echoes_lab.climate.metrics` term for term (same order
    of operations), so the results equal the array-at-a-time definitions.
    """
    s, n = t.shape
    k = classes.shape[0]
    nan = np.nan
    # per sensor: readings, valid, flagged, mould, excursions, in band T/RH/both
    counts = np.zeros((s, 8), dtype=np.int64)
    # per sensor: T min/max, RH min/max, dew point max, EMC min/max, sum of 1/PI, n of 1/PI
    stats = np.full((s, 9), nan)
    ok_total = np.zeros((s, k), dtype=np.int64)
    g_valid = np.zeros((s, n_groups), dtype=np.int64)
    g_ok = np.zeros((s, n_groups, k), dtype=np.int64)
    g_fail = np.full((s, n_groups, k), nan)
    has_quality = quality.shape[1] == n
    for i in range(s):
        tm, hm = t_mean[i], rh_mean[i]
        setpoint_ok = tm >= setpoint[0] and tm <= setpoint[1]
        inv_pi_sum, inv_pi_n = 0.0, 0
        for j in range(n):
            tt, h = t[i, j], rh[i, j]
            t_ok, h_ok = tt == tt, h == h
            if has_quality and quality[i, j] > 1:
                counts[i, 2] += 1
            if t_ok:
                counts[i, 0] += 1
                if not (stats[i, 0] <= tt):
                    stats[i, 0] = tt
                if not (stats[i, 1] >= tt):
                    stats[i, 1] = tt
            if h_ok:
                if not (stats[i, 2] <= h):
                    stats[i, 2] = h
                if not (stats[i, 3] >= h):
                    stats[i, 3] = h
                season = rhs[i, j]
                if season == season and (h < season + low[i] or h > season + high[i]):
                    counts[i, 4] += 1
            if not (t_ok and h_ok):
                continue
            counts[i, 1] += 1
            # dew point (Magnus; metrics.dew_point)
            gamma = np.log(h / 100.0) + m.MAGNUS_B * tt / (m.MAGNUS_C + tt)
            dp = m.MAGNUS_C * gamma / (m.MAGNUS_B - gamma)
            if dp == dp and not (stats[i, 4] >= dp):
                stats[i, 4] = dp
            # wood EMC (metrics.emc_wood)
            # (x * x is what numpy computes for x ** 2, bit for bit, without a call to pow)
            hh, t2 = h / 100.0, tt * tt
            w = 349.0 + 1.29 * tt + 0.0135 * t2
            kk = 0.805 + 0.000736 * tt - 0.00000273 * t2
            k1 = 6.27 - 0.00938 * tt - 0.000303 * t2
            k2 = 1.91 + 0.0407 * tt - 0.000293 * t2
            kh = kk * hh
            kh2 = kh * kh
            emc = (
                1800.0
                / w
                * (kh / (1 - kh) + (k1 * kh + 2 * k1 * k2 * kh2) / (1 + k1 * kh + k1 * k2 * kh2))
            )
            if emc == emc:
                if not (stats[i, 5] <= emc):
                    stats[i, 5] = emc
                if not (stats[i, 6] >= emc):
                    stats[i, 6] = emc
            # IPI preservation index (metrics.preservation_index), summed as a rate for TWPI
            pi = (
                np.exp((95220.0 - 134.9 * h) / (8.314 * (tt + 273.15)) + 0.0284 * h - 28.023)
                / 365.0
            )
            inv = 1.0 / pi
            if inv == inv:
                inv_pi_sum += inv
                inv_pi_n += 1
            # mould (metrics.mould_risk)
            if (
                h >= 65
                and tt >= 2
                and tt <= 45
                and h >= 100.0 * (0.02633 * np.cosh(0.10083 * (tt - 30.0)) + 0.7153)
            ):
                counts[i, 3] += 1
            # the agreed band (metrics.ClimateAccessor.time_in_band)
            in_t = tt >= t_band[0] and tt <= t_band[1]
            in_h = h >= rh_band[0] and h <= rh_band[1]
            counts[i, 5] += in_t
            counts[i, 6] += in_h
            counts[i, 7] += in_t and in_h
            # ASHRAE classes (metrics.ClimateAccessor.ashrae_compliance)
            g = group[j]
            g_valid[i, g] += 1
            t_season = ts[i, j]
            for c in range(k):
                ok = True
                if classes[c, 0] > 0:
                    lo, up = hm - classes[c, 3], hm + classes[c, 2]
                    tlo, tup = tm - classes[c, 6], tm + classes[c, 5]
                    if season != season or t_season != t_season or not setpoint_ok:
                        ok = False
                    else:
                        rh_set = min(max(season, lo), up)
                        t_set = min(max(t_season, tlo), tup)
                        ok = abs(h - rh_set) <= classes[c, 1] and abs(tt - t_set) <= classes[c, 4]
                ok = ok and h >= classes[c, 7]
                ok = ok and (h <= classes[c, 8] if classes[c, 9] > 0 else h < classes[c, 8])
                ok = ok and tt <= classes[c, 10]
                if ok:
                    ok_total[i, c] += 1
                    g_ok[i, g, c] += 1
                elif not (g_fail[i, g, c] <= seconds[j]):
                    g_fail[i, g, c] = seconds[j]
        stats[i, 7] = inv_pi_sum
        stats[i, 8] = inv_pi_n
    return counts, stats, ok_total, g_valid, g_ok, g_fail


# -- one block of sensors ---------------------------------------------------------------------


def _block(t, rh, quality, half, group, n_groups, seconds, classes, params):
    """All accumulators of one block of whole sensor records (numpy in, numpy out)."""
    t = np.ascontiguousarray(t, dtype=np.float64)
    rh = np.ascontiguousarray(rh, dtype=np.float64)
    ts, rhs = np.empty_like(t), np.empty_like(rh)
    _centred_means(t, half, ts)
    _centred_means(rh, half, rhs)
    # xarray's own reductions, as the accessor uses them (same numbers, NaN skipped)
    dims = ("sensor", "time")
    t_mean = xr.Variable(dims, t).mean("time").values
    rh_mean = xr.Variable(dims, rh).mean("time").values
    q = xr.Variable(dims, rh - rhs).quantile(params["quantiles"], dim="time").values
    low, high = q[0], q[1]
    if params["min_half_width"] is not None:
        low = np.minimum(low, -params["min_half_width"])
        high = np.maximum(high, params["min_half_width"])
    quality = (
        np.zeros((t.shape[0], 0), dtype=np.int16)
        if quality is None
        else np.ascontiguousarray(quality)
    )
    out = _fused(t, rh, ts, rhs, quality, t_mean, rh_mean, low, high, group, n_groups, seconds,
                 classes, params["setpoint"], params["t_band"], params["rh_band"])
    return (t_mean, rh_mean) + out


def warm() -> None:
    """Compile the kernels (or load them from numba's cache) on a tiny record."""
    x = np.full((1, 4), 50.0)
    _block(
        x,
        x,
        None,
        1,
        np.zeros(4, dtype=np.int64),
        1,
        np.arange(4.0),
        _class_table(),
        {
            "quantiles": [0.07, 0.93],
            "min_half_width": 10.0,
            "setpoint": np.array(m.ASHRAE_SETPOINT_T),
            "t_band": np.array([16.0, 25.0]),
            "rh_band": np.array([40.0, 60.0]),
        },
    )


# -- the driver -----------------------------------------------------------------------------------


def periods(time_index: pd.DatetimeIndex, freq: str) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Period number of each reading and the period labels, exactly as
    ``Dataset.resample(time=freq)`` bins them (empty periods included)."""
    bins = pd.Series(np.zeros(len(time_index)), index=time_index).resample(freq).count()
    return np.repeat(np.arange(len(bins)), bins.to_numpy()).astype(np.int64), bins.index


def block_size(n_time: int, chunks: tuple | None = None) -> int:
    """Sensors per block: whole records, ``BLOCK_BYTES`` per variable (at least one sensor).

    A dask-backed variable already split by sensor keeps its own blocks when they fit in
    twice that (each block then reads whole chunks of a Zarr store, no more), or whole
    multiples of them.
    """
    size = max(1, BLOCK_BYTES // (8 * max(n_time, 1)))
    if chunks is not None and len(set(chunks[0][:-1])) <= 1:
        stored = chunks[0][0]
        if stored <= size:
            return stored * (size // stored)
        if stored <= 2 * size:
            return stored
    return size


def _compute(tasks: list, label: str) -> list:
    """Compute dask tasks with a progress bar (notebook widget or terminal line)."""
    import dask
    from tqdm.auto import tqdm

    try:
        from distributed import default_client, wait

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is None:
        from tqdm.dask import TqdmCallback

        with TqdmCallback(desc=label, leave=False, mininterval=1.0):
            return list(dask.compute(*tasks))
    futures = client.compute(tasks)
    with tqdm(total=len(futures), desc=label, leave=False, mininterval=1.0) as bar:
        for f in futures:
            f.add_done_callback(lambda _f: bar.update(1))
        wait(futures)
    return client.gather(futures)


def assess(
    ds: xr.Dataset,
    freq: str = "MS",
    window: str = "30D",
    percentiles=(7, 93),
    min_half_width: float | None = 10.0,
    t_band=(16.0, 25.0),
    rh_band=(40.0, 60.0),
):
    """Every risk-table and ASHRAE accumulator of ``ds`` in one pass over the readings.

    Returns ``(per_sensor, per_period)``: two ``xarray.Dataset`` of plain numbers, indexed by
    ``sensor`` and by ``time`` (period start, as ``resample`` labels it) and ``sensor``.
    """
    import dask

    started = time.perf_counter()
    step = m._step(ds)
    half = int(pd.Timedelta(window) / step) // 2
    time_index = ds.indexes["time"]
    group, labels = periods(time_index, freq)
    seconds = ((ds["time"] - np.datetime64("1970-01-01")) / np.timedelta64(1, "s")).to_numpy()
    params = {
        "quantiles": [p / 100 for p in percentiles],
        "min_half_width": min_half_width,
        "setpoint": np.array(m.ASHRAE_SETPOINT_T, dtype=float),
        "t_band": np.array(t_band, dtype=float),
        "rh_band": np.array(rh_band, dtype=float),
    }
    classes = _class_table()
    n_sensor, n_time = ds.sizes["sensor"], ds.sizes["time"]
    names = ["temperature", "relative_humidity"] + (["quality"] if "quality" in ds else [])
    arrays = [ds[v].transpose("sensor", "time").data for v in names]
    size = block_size(n_time, getattr(arrays[0], "chunks", None))
    block = dask.delayed(_block, pure=True)
    tasks = []
    for start in range(0, n_sensor, size):
        parts = [a[start : start + size] for a in arrays]
        tasks.append(
            block(
                parts[0],
                parts[1],
                parts[2] if len(parts) > 2 else None,
                half,
                group,
                len(labels),
                seconds,
                classes,
                params,
            )
        )
    log.info(
        "climate: %d sensors x %d readings in %d blocks of %d sensors",
        n_sensor,
        n_time,
        len(tasks),
        size,
    )
    results = _compute(tasks, "climate metrics")
    log.info("climate: all metrics in %.1f s", time.perf_counter() - started)
    t_mean, rh_mean, counts, stats, ok_total, g_valid, g_ok, g_fail = (
        np.concatenate(part) for part in zip(*results, strict=True)
    )
    return _tables(ds, t_mean, rh_mean, counts, stats, ok_total, g_valid, g_ok, g_fail, labels)


def _tables(ds, t_mean, rh_mean, counts, stats, ok_total, g_valid, g_ok, g_fail, labels):
    classes = list(m.ASHRAE_CLASSES)
    sensor = {"sensor": ds["sensor"].to_numpy()}
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = counts[:, 1].astype(float)
        per_sensor = xr.Dataset(
            {
                "readings": ("sensor", counts[:, 0]),
                "valid": ("sensor", counts[:, 1]),
                "flagged": ("sensor", counts[:, 2]),
                "mould": ("sensor", counts[:, 3]),
                "excursions": ("sensor", counts[:, 4]),
                "T mean": ("sensor", t_mean),
                "RH mean": ("sensor", rh_mean),
                "T min": ("sensor", stats[:, 0]),
                "T max": ("sensor", stats[:, 1]),
                "RH min": ("sensor", stats[:, 2]),
                "RH max": ("sensor", stats[:, 3]),
                "dew point max": ("sensor", stats[:, 4]),
                "EMC min": ("sensor", stats[:, 5]),
                "EMC max": ("sensor", stats[:, 6]),
                "TWPI (years)": ("sensor", 1.0 / (stats[:, 7] / stats[:, 8])),
                **{
                    f"ASHRAE {c}": ("sensor", ok_total[:, i] / valid) for i, c in enumerate(classes)
                },
                **{
                    f"in band ({name})": ("sensor", counts[:, 5 + i] / valid)
                    for i, name in enumerate(("temperature", "relative_humidity", "both"))
                },
            },
            coords=sensor,
        )
        g_valid = g_valid.astype(float)[:, :, None]
        share = g_ok / g_valid
    # periods first, as ``resample`` orders its result
    per_period = xr.Dataset(
        {
            **{c: (("time", "sensor"), share[:, :, i].T) for i, c in enumerate(classes)},
            **{
                f"{c} first failure": (("time", "sensor"), g_fail[:, :, i].T)
                for i, c in enumerate(classes)
            },
        },
        coords={**sensor, "time": labels},
    )
    return per_sensor, per_period

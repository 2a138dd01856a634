"""One pass for every climate metric: the engine behind ``ds.climate.risk_table()`` and
``ds.climate.ashrae()``.

The per-reading definitions stay in :mod:`echoes_lab.climate.metrics` (each formula with its
reference); this module evaluates all of them together, sensor by sensor, at the speed of
the memory:

1. per sensor, in one compiled function (numba, ``nogil``): the 30-day centred moving means
   of T and RH in O(n) (running sums, the arithmetic of
   :func:`~echoes_lab.climate.metrics.moving_average`, both records in one loop), the record
   means, the EN 15757 percentiles of the RH fluctuations (numpy's default "linear" quantile,
   Hyndman & Fan 1996 type 7, by partial selection instead of a sort), then period by period
   (a month's readings stay in the cache): the wood EMC and the IPI preservation index in a
   branch-free loop that LLVM vectorises (AVX2; the exponential by Cody–Waite reduction and a
   polynomial, because numba's ``exp`` is a scalar libm call), one loop over the readings for
   dew point, mould risk, the EN 15757 band and the agreed band, and the six ASHRAE classes
   counted by vectorised loops; only what the tables need is kept: counts, minima, maxima,
   sums, per-period shares and first failures;
2. NumPy-backed data (what :func:`echoes_lab.read_climate` returns) go straight to that
   function on a thread pool, a slice of sensors per thread: no dask graph, no hashing of the
   data, no copy of a float64 record (scratch is three rows per thread). Dask-backed data (a
   Zarr store larger than memory, a gateway cluster) become one dask task per block of whole
   sensor records, each running the same function, with a progress bar.

The compiled code is cached by numba (``cache=True``) beside this file, in
``echoes_lab/climate/__pycache__``; ``make install`` compiles it there once
(:func:`warm`). A user whose kernel cannot write into the installed package (every user of a
shared hub) gets numba's per-user cache instead (``~/.cache/numba`` or ``NUMBA_CACHE_DIR``),
and :func:`_seed_user_cache` copies the install-time files there before the first call, so no
kernel of any user compiles anything while the package is unchanged.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from echoes_lab.climate import metrics as m

log = logging.getLogger("echoes_lab.climate")

#: bytes of one variable in one block of a dask-backed record (whole records of a few sensors)
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

#: columns of the integer accumulators per sensor
_COUNTS = ("readings", "valid", "flagged", "mould", "excursions", "in_t", "in_rh", "in_both")
#: columns of the float accumulators per sensor
_STATS = ("T mean", "RH mean", "T min", "T max", "RH min", "RH max", "dew point max", "EMC min",
          "EMC max", "inverse PI sum", "inverse PI count")


def _class_table() -> np.ndarray:
    rows = []
    for name, spec in m.ASHRAE_CLASSES.items():
        precision = "rh_short" in spec
        t_down = spec.get("t_down", 0)
        rh_max = spec.get("rh_max", math.inf)
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
                # class C allows RH = 75 %, the others need RH < 75 %: tested as RH ≤ the
                # largest double below the limit, which is the same test exactly
                rh_max if name == "C" else math.nextafter(rh_max, -math.inf),
                float(name == "C"),
                spec.get("t_max", math.inf),
            ]
        )
    return np.array(rows, dtype=np.float64)


# -- the kernels --------------------------------------------------------------------------------


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _seasonal(x, y, half, xs, ys):  # pragma: no cover - compiled
    """Centred moving means of two records (T and RH) over ``2·half + 1`` steps, NaN skipped,
    NaN where fewer than ``half`` readings are valid
    (:func:`echoes_lab.climate.metrics.moving_average`).

    A sliding window sum (add the reading entering, subtract the one leaving): O(n) whatever
    the window; its rounding error grows as √n·ε·|sum|, about 1e-13 of the mean for a year at
    5 minutes, below the cumulative-sum form's. Both records in one loop: each sum is a chain
    of dependent additions, and two independent chains keep the core's adders busy; the
    entering and leaving readings are folded into one addition per chain, without branches.
    """
    n = x.shape[0]
    full = 2 * half + 1
    inv_full = 1.0 / full
    sx, sy, cx, cy = 0.0, 0.0, 0, 0
    for j in range(min(half, n)):
        vx, vy = x[j], y[j]
        okx, oky = vx == vx, vy == vy
        sx += vx if okx else 0.0
        sy += vy if oky else 0.0
        cx += okx
        cy += oky
    for j in range(n):
        a, r = j + half, j - half - 1
        ax = x[a] if a < n else np.nan
        ay = y[a] if a < n else np.nan
        rx = x[r] if r >= 0 else np.nan
        ry = y[r] if r >= 0 else np.nan
        oax, oay, orx, ory = ax == ax, ay == ay, rx == rx, ry == ry
        sx += (ax if oax else 0.0) - (rx if orx else 0.0)
        sy += (ay if oay else 0.0) - (ry if ory else 0.0)
        cx += oax - orx
        cy += oay - ory
        if cx == full:
            xs[j] = sx * inv_full
        elif cx >= half and cx > 0:
            xs[j] = sx / cx
        else:
            xs[j] = np.nan
        if cy == full:
            ys[j] = sy * inv_full
        elif cy >= half and cy > 0:
            ys[j] = sy / cy
        else:
            ys[j] = np.nan


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _order_statistics(values, lo, hi, ranks, out):  # pragma: no cover - compiled
    """``out[r]`` = the ``ranks[r]``-th smallest of ``values`` (0-based), exactly; ``ranks``
    come in pairs of a rank and the next.

    A selection by histogram: count the values in 4,096 equal bins between their minimum
    ``lo`` and maximum ``hi``, find the bins holding the wanted ranks, then sort only the
    values of those bins (Knuth, *TAOCP* vol. 3, §5.3.3 on selection; the bucket step is
    "distribution counting", §5.2). Two passes over the values instead of an O(n log n) sort.
    """
    m = values.shape[0]
    if not hi > lo:  # all values equal
        out[:] = lo
        return
    nb = 4096
    scale = nb / (hi - lo)
    counts = np.zeros(nb, dtype=np.int64)
    for j in range(m):
        counts[min(int((values[j] - lo) * scale), nb - 1)] += 1
    start = np.empty(nb + 1, dtype=np.int64)
    start[0] = 0
    for b in range(nb):
        start[b + 1] = start[b] + counts[b]
    bins = np.searchsorted(start[1:], ranks, side="right")
    # ranks come in pairs (a rank and the next): the values of each pair's bins, sorted
    pairs = ranks.shape[0] // 2
    size = 0
    for p in range(pairs):
        size = max(size, start[bins[2 * p + 1] + 1] - start[bins[2 * p]])
    picked = np.empty((pairs, size))
    filled = np.zeros(pairs, dtype=np.int64)
    for j in range(m):
        v = values[j]
        b = min(int((v - lo) * scale), nb - 1)
        for p in range(pairs):
            if b >= bins[2 * p] and b <= bins[2 * p + 1]:
                picked[p, filled[p]] = v
                filled[p] += 1
    for p in range(pairs):
        row = np.sort(picked[p, : filled[p]])
        for r in (2 * p, 2 * p + 1):
            out[r] = row[ranks[r] - start[bins[2 * p]]]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _linear_quantile(ordered, m, q):  # pragma: no cover - compiled
    """numpy's default quantile (method "linear", Hyndman & Fan 1996, Amer. Stat. 50, 361,
    definition 7) of ``m`` values: ``ordered`` = the order statistics at ranks ``⌊(m−1)q⌋``
    and the next; numpy's ``_lerp`` (the upper form where the weight is ≥ 0.5)."""
    virtual = (m - 1) * q
    gamma = virtual - math.floor(virtual)
    a, b = ordered[0], ordered[1]
    diff = b - a
    return b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _class_period(x, h, ts, hs, a, b, c, classes, lim, seasons_ok):  # pragma: no cover
    """Readings ``a … b−1`` (one period) against ASHRAE class ``c``: how many meet it and the
    index of the first valid one that does not (``b`` if none).

    metrics.ClimateAccessor.ashrae_compliance. The readings are counted ``_CHUNK`` at a time
    without branches on the data (the conditions combined with ``&``), so that LLVM turns the
    loop into SIMD instructions: a reading near a limit no longer costs a mispredicted branch.
    A reading that meets a class is valid, so a chunk holds a failure when fewer readings met
    the class than were valid; only the first such chunk is scanned reading by reading for the
    first failure. A strict limit ``RH < 75`` is stored as ``RH ≤`` the largest double below 75
    (:func:`_class_table`), the same test exactly.
    """
    rh_short, t_short = classes[c, 1], classes[c, 4]
    rh_least, rh_most, t_most = classes[c, 7], classes[c, 8], classes[c, 10]
    precise = classes[c, 0] > 0
    rh_lo, rh_hi, t_lo, t_hi = lim[c, 0], lim[c, 1], lim[c, 2], lim[c, 3]
    ok_n, first = 0, b
    for c0 in range(a, b, _CHUNK):
        c1 = min(c0 + _CHUNK, b)
        ok_c, valid_c = 0, 0
        if precise and seasons_ok:
            for j in range(c0, c1):
                tt, hh, t_season, season = x[j], h[j], ts[j], hs[j]
                valid_c += (tt == tt) & (hh == hh)
                ok_c += ((abs(hh - min(max(season, rh_lo), rh_hi)) <= rh_short)
                         & (abs(tt - min(max(t_season, t_lo), t_hi)) <= t_short)
                         & (season == season) & (t_season == t_season)
                         & (hh >= rh_least) & (hh <= rh_most) & (tt <= t_most))
        elif precise:  # no valid set point: no reading meets the class
            for j in range(c0, c1):
                valid_c += (x[j] == x[j]) & (h[j] == h[j])
        else:
            for j in range(c0, c1):
                tt, hh = x[j], h[j]
                valid_c += (tt == tt) & (hh == hh)
                ok_c += (hh >= rh_least) & (hh <= rh_most) & (tt <= t_most)
        ok_n += ok_c
        if first == b and ok_c < valid_c:  # a failure in this chunk: the first one
            for j in range(c0, c1):
                tt, hh, t_season, season = x[j], h[j], ts[j], hs[j]
                if tt != tt or hh != hh:
                    continue
                ok = hh >= rh_least and hh <= rh_most and tt <= t_most
                if precise:
                    ok = (ok and seasons_ok and season == season and t_season == t_season
                          and abs(hh - min(max(season, rh_lo), rh_hi)) <= rh_short
                          and abs(tt - min(max(t_season, t_lo), t_hi)) <= t_short)
                if not ok:
                    first = j
                    break
    return ok_n, first


#: readings per step of the ASHRAE count (a few SIMD iterations; bounds the scalar search)
_CHUNK = 128

#: Cody & Waite's argument reduction for exp (W. J. Cody, W. Waite, *Software Manual for the
#: Elementary Functions*, 1980, ch. 6), with fdlibm's split of ln 2 (``e_exp.c``: ``ln2HI``
#: has 32 significant bits, so ``k·ln2HI`` is exact for the k of any double's exponent)
_LN2_HI, _LN2_LO, _LOG2E = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 1.0 / math.log(2)
#: |z| below which the reduced exponential is used; beyond, libm's (2^k would leave the normal
#: range, and the data are then far outside any indoor climate)
_EXP_SAFE = 700.0
#: Taylor coefficients 1/n! of e^r, n = 13 … 0: on |r| ≤ ln2/2 the first term left out,
#: r^14/14!, is below 4e-18, under half an ulp of the result
_EXP_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(13, -1, -1))


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _exp_reduced(z):  # pragma: no cover - compiled
    """``(p, k)`` with e^z = p·2^k (|z| < ``_EXP_SAFE``): k = round(z/ln 2), r = z − k·ln 2 in
    two exact steps (Cody & Waite 1980), p = e^r by its Taylor polynomial in Horner form.

    Only arithmetic, no call into libm, so that LLVM can evaluate four readings per AVX2
    instruction (numba's ``np.exp`` is a scalar libm call: ~7 ns a reading here; Intel's SVML
    vector library is not available with the PyPI llvmlite). Agrees with libm's ``exp`` to a
    few ulp (``tests/test_climate_engine.py``).
    """
    kf = np.floor(z * _LOG2E + 0.5)
    kf = min(max(kf, -1020.0), 1020.0) if kf == kf else 0.0  # int conversion of NaN is undefined
    r = (z - kf * _LN2_HI) - kf * _LN2_LO
    p = 0.0
    for c in _EXP_TAYLOR:
        p = p * r + c
    return p, np.int64(np.int32(kf))


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _emc_inverse_pi(x, h_row, emc_s, z_s, p_s, bits):  # pragma: no cover - compiled
    """Readings ``x, h_row`` (one period): wood EMC into ``emc_s``; the exponent of 1/PI into
    ``z_s`` and its exponential as ``p_s[j]·2^k``, ``k`` written into ``bits`` as the bits of
    the double 2^k (IEEE 754: exponent field k + 1023), so that the caller's view of ``bits``
    as float64 gives 2^k. No branch on the data: LLVM vectorises the loop (AVX2, four
    readings at once).

    Wood EMC (:func:`echoes_lab.climate.metrics.emc_wood`; Hailwood–Horrobin, Wood Handbook
    2010, eq. 4-5): 1800/W·[Kh/(1−Kh) + A/B] over one denominator. 1/PI
    (:func:`echoes_lab.climate.metrics.preservation_index`; Sebera 1994 via IPI) =
    365·e^z with z = −[(95220 − 134.9·RH)/(8.314·(T + 273.15)) + 0.0284·RH − 28.023].
    """
    for j in range(x.shape[0]):
        tt, h = x[j], h_row[j]
        hh, t2 = h / 100.0, tt * tt
        w = 349.0 + 1.29 * tt + 0.0135 * t2
        kk = 0.805 + 0.000736 * tt - 0.00000273 * t2
        k1 = 6.27 - 0.00938 * tt - 0.000303 * t2
        k2 = 1.91 + 0.0407 * tt - 0.000293 * t2
        kh = kk * hh
        kh2 = kh * kh
        num_b = 1 + k1 * kh + k1 * k2 * kh2
        one_kh = 1 - kh
        emc_s[j] = 1800.0 * (kh * num_b + (k1 * kh + 2 * k1 * k2 * kh2) * one_kh) / (
            w * one_kh * num_b
        )
        z = -((95220.0 - 134.9 * h) / (8.314 * (tt + 273.15)) + 0.0284 * h - 28.023)
        z_s[j] = z
        p, k = _exp_reduced(z)
        p_s[j] = p
        bits[j] = (k + 1023) << 52


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _sensors(t, rh, quality, half, quantiles, min_half_width, starts, seconds, classes, setpoint,
             t_band, rh_band, counts, stats, ok_total, g_valid, g_ok, g_fail):  # pragma: no cover
    """Every accumulator of the records ``t[i], rh[i]``, written into row ``i`` of the outputs;
    period ``g`` is readings ``starts[g] … starts[g+1]−1``.

    The per-reading expressions are those of :mod:`echoes_lab.climate.metrics` (with their
    references), rearranged only where the value is the same up to rounding: one division for
    the EMC, ``365·exp(−x)`` for 1/PI, and the dew point computed only for readings that may
    exceed the maximum so far (below). The ASHRAE classes are counted period by period, one
    class at a time (:func:`_class_period`), while the period's readings are in the cache.
    """
    s, n = t.shape
    k = classes.shape[0]
    n_groups = starts.shape[0] - 1
    nan = np.nan
    b_, c_ = m.MAGNUS_B, m.MAGNUS_C
    ts, rhs, buf = np.empty(n), np.empty(n), np.empty(n)
    # one period's EMC and 1/PI (a period at a time: the scratch stays in the cache)
    longest = 0
    for g in range(n_groups):
        longest = max(longest, starts[g + 1] - starts[g])
    emc_s, z_s, p_s = np.empty(longest), np.empty(longest), np.empty(longest)
    bits = np.empty(longest, dtype=np.int64)
    scale_s = bits.view(np.float64)  # 2^k of each exponential, written as bits
    has_quality = quality.shape[1] == n
    lim = np.empty((k, 4))  # the seasonal set-point limits of the precision classes
    ranks = np.empty(4, dtype=np.int64)
    ordered = np.empty(4)
    for i in range(s):
        x, h_row = t[i], rh[i]
        _seasonal(x, h_row, half, ts, rhs)
        # record means (NaN skipped) and the fluctuations of RH around its seasonal cycle
        t_sum, t_n, h_sum, h_n, f_n = 0.0, 0, 0.0, 0, 0
        f_lo, f_hi = np.inf, -np.inf
        for j in range(n):
            tt, h = x[j], h_row[j]
            if tt == tt:
                t_sum += tt
                t_n += 1
            if h == h:
                h_sum += h
                h_n += 1
                f = h - rhs[j]
                if f == f:
                    buf[f_n] = f
                    f_n += 1
                    f_lo = min(f_lo, f)
                    f_hi = max(f_hi, f)
        tm = t_sum / t_n if t_n else nan
        hm = h_sum / h_n if h_n else nan
        low, high = nan, nan
        if f_n:
            for r in range(2):
                lo_rank = int(math.floor((f_n - 1) * quantiles[r]))
                ranks[2 * r] = lo_rank
                ranks[2 * r + 1] = min(lo_rank + 1, f_n - 1)
            _order_statistics(buf[:f_n], f_lo, f_hi, ranks, ordered)
            low = _linear_quantile(ordered[0:2], f_n, quantiles[0])
            high = _linear_quantile(ordered[2:4], f_n, quantiles[1])
            if min_half_width == min_half_width:
                low, high = min(low, -min_half_width), max(high, min_half_width)
        setpoint_ok = tm >= setpoint[0] and tm <= setpoint[1]
        for c in range(k):
            lim[c, 0], lim[c, 1] = hm - classes[c, 3], hm + classes[c, 2]
            lim[c, 2], lim[c, 3] = tm - classes[c, 6], tm + classes[c, 5]
        n_read, n_valid, n_flag, n_mould, n_exc, n_in_t, n_in_h, n_in_both = 0, 0, 0, 0, 0, 0, 0, 0
        t_min, t_max, h_min, h_max, e_min, e_max = np.inf, -np.inf, np.inf, -np.inf, np.inf, -np.inf
        # dew point maximum: the reading (h*, t*) with the largest γ so far
        g_best, h_best, t_best, ct_best, inv_h_best = -np.inf, 0.0, 0.0, 1.0, 0.0
        dp_cold = -np.inf  # the largest dew point of readings below −c °C (none indoors)
        inv_pi_sum, inv_pi_n = 0.0, 0
        for g in range(n_groups):
            a, b = starts[g], starts[g + 1]
            _emc_inverse_pi(x[a:b], h_row[a:b], emc_s, z_s, p_s, bits)
            n_g = 0
            for j in range(a, b):
                tt, h = x[j], h_row[j]
                t_ok, h_ok = tt == tt, h == h
                if has_quality and quality[i, j] > 1:
                    n_flag += 1
                if t_ok:
                    n_read += 1
                    t_min = min(t_min, tt)
                    t_max = max(t_max, tt)
                season = rhs[j]
                if h_ok:
                    h_min = min(h_min, h)
                    h_max = max(h_max, h)
                    if season == season and (h < season + low or h > season + high):
                        n_exc += 1
                if not (t_ok and h_ok):
                    continue
                n_valid += 1
                n_g += 1
                # dew point (Magnus; metrics.dew_point) is increasing in γ = ln(RH/100) + bT/(c+T),
                # so its maximum is at the largest γ. With ln(u) ≤ u − 1 (u = h/h*) and
                # bT/(c+T) − bT*/(c+T*) = bc(T−T*)/((c+T)(c+T*)), γ > γ* is only possible when
                # (h−h*)/h*·(c+T)(c+T*) + bc(T−T*) > 0 (both factors are positive above −c °C):
                # a few multiplications rule out most readings before the logarithm.
                ct = c_ + tt
                if ct <= 0:  # below −c °C the dew point is not increasing in γ: its own value
                    gamma = np.log(h / 100.0) + b_ * tt / ct
                    dp_cold = max(dp_cold, c_ * gamma / (b_ - gamma))
                elif g_best == -np.inf or (
                    (h - h_best) * inv_h_best * ct * ct_best + b_ * c_ * (tt - t_best) > 0
                ):
                    gamma = np.log(h / 100.0) + b_ * tt / ct
                    if gamma > g_best:
                        g_best, h_best, t_best, ct_best = gamma, h, tt, ct
                        inv_h_best = 1.0 / h if h > 0 else np.inf
                # wood EMC and 1/PI, computed for the period by _emc_inverse_pi
                emc = emc_s[j - a]
                if emc == emc:
                    e_min = min(e_min, emc)
                    e_max = max(e_max, emc)
                z = z_s[j - a]
                inv = 365.0 * (p_s[j - a] * scale_s[j - a] if z > -_EXP_SAFE and z < _EXP_SAFE
                               else np.exp(z))
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
                    n_mould += 1
                # the agreed band (metrics.ClimateAccessor.time_in_band)
                in_t = tt >= t_band[0] and tt <= t_band[1]
                in_h = h >= rh_band[0] and h <= rh_band[1]
                n_in_t += in_t
                n_in_h += in_h
                n_in_both += in_t and in_h
            # ASHRAE classes (metrics.ClimateAccessor.ashrae_compliance) in this period
            g_valid[i, g] = n_g
            for c in range(k):
                ok_n, first = _class_period(x, h_row, ts, rhs, a, b, c, classes, lim,
                                            setpoint_ok)
                g_ok[i, g, c] = ok_n
                g_fail[i, g, c] = seconds[first] if first < b else nan
        counts[i, 0], counts[i, 1], counts[i, 2], counts[i, 3] = n_read, n_valid, n_flag, n_mould
        counts[i, 4], counts[i, 5], counts[i, 6], counts[i, 7] = n_exc, n_in_t, n_in_h, n_in_both
        for c in range(k):
            total = 0
            for g in range(g_ok.shape[1]):
                total += g_ok[i, g, c]
            ok_total[i, c] = total
        dp = c_ * g_best / (b_ - g_best) if g_best > -np.inf else nan
        if dp_cold > -np.inf:
            dp = dp_cold if dp != dp else max(dp, dp_cold)
        none = n_read == 0
        stats[i, 0], stats[i, 1] = tm, hm
        stats[i, 2], stats[i, 3] = (nan, nan) if none else (t_min, t_max)
        stats[i, 4], stats[i, 5] = (nan, nan) if h_n == 0 else (h_min, h_max)
        stats[i, 6] = dp
        stats[i, 7], stats[i, 8] = (nan, nan) if e_min == np.inf else (e_min, e_max)
        stats[i, 9] = inv_pi_sum
        stats[i, 10] = inv_pi_n


# -- blocks of sensors ------------------------------------------------------------------------


def _outputs(n_sensor: int, n_groups: int, k: int) -> tuple[np.ndarray, ...]:
    return (
        np.zeros((n_sensor, len(_COUNTS)), dtype=np.int64),
        np.full((n_sensor, len(_STATS)), np.nan),
        np.zeros((n_sensor, k), dtype=np.int64),
        np.zeros((n_sensor, n_groups), dtype=np.int64),
        np.zeros((n_sensor, n_groups, k), dtype=np.int64),
        np.full((n_sensor, n_groups, k), np.nan),
    )


def _as_inputs(t, rh, quality):
    t = np.ascontiguousarray(t, dtype=np.float64)
    rh = np.ascontiguousarray(rh, dtype=np.float64)
    quality = (
        np.zeros((t.shape[0], 0), dtype=np.int16)
        if quality is None
        else np.ascontiguousarray(quality, dtype=np.int16)
    )
    return t, rh, quality


def _run(t, rh, quality, params, out) -> None:
    """The kernel on whole records ``t, rh`` (numpy), into the accumulators ``out``."""
    _sensors(t, rh, quality, params["half"], params["quantiles"], params["min_half_width"],
             params["starts"], params["seconds"], params["classes"], params["setpoint"],
             params["t_band"], params["rh_band"], *out)


def _block(t, rh, quality, params):
    """All accumulators of one block of whole sensor records (a dask task)."""
    t, rh, quality = _as_inputs(t, rh, quality)
    out = _outputs(t.shape[0], params["n_groups"], params["classes"].shape[0])
    _run(t, rh, quality, params, out)
    return out


def threads() -> int:
    """Cores this process may use (its CPU affinity, which a cgroup or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _in_memory(t, rh, quality, params) -> tuple[np.ndarray, ...]:
    """NumPy records: the kernel on a slice of sensors per thread, writing into one set of
    accumulators (each thread its own rows); no dask, no copy of float64 C-ordered data."""
    t, rh, quality = _as_inputs(t, rh, quality)
    n_sensor = t.shape[0]
    out = _outputs(n_sensor, params["n_groups"], params["classes"].shape[0])
    workers = min(threads(), n_sensor)
    if workers <= 1:
        _run(t, rh, quality, params, out)
        return out
    # a few slices per thread, so that one slow slice (a busy core) does not hold the others
    edges = np.linspace(0, n_sensor, min(n_sensor, 4 * workers) + 1).astype(int)

    def one(a: int, b: int) -> None:
        _run(t[a:b], rh[a:b], quality[a:b], params, tuple(o[a:b] for o in out))

    with ThreadPoolExecutor(workers, thread_name_prefix="echoes-climate") as pool:
        slices = zip(edges[:-1], edges[1:], strict=True)
        for f in [pool.submit(one, a, b) for a, b in slices if b > a]:
            f.result()
    return out


def _params(half, group, n_groups, seconds, percentiles=(7, 93), min_half_width=10.0,
            t_band=(16.0, 25.0), rh_band=(40.0, 60.0)) -> dict:
    return {
        "half": half,
        "quantiles": np.array([p / 100 for p in percentiles], dtype=np.float64),
        "min_half_width": math.nan if min_half_width is None else float(min_half_width),
        # where each period's readings start (``group`` numbers them in time order)
        "starts": np.searchsorted(np.asarray(group, dtype=np.int64), np.arange(n_groups + 1)),
        "n_groups": n_groups,
        "seconds": np.ascontiguousarray(seconds, dtype=np.float64),
        "classes": _class_table(),
        "setpoint": np.array(m.ASHRAE_SETPOINT_T, dtype=np.float64),
        "t_band": np.array(t_band, dtype=np.float64),
        "rh_band": np.array(rh_band, dtype=np.float64),
    }


# -- the compiled code's cache -------------------------------------------------------------------

_KERNELS = (_seasonal, _order_statistics, _linear_quantile, _class_period, _exp_reduced,
            _emc_inverse_pi, _sensors)


def _seed_user_cache() -> int:
    """Copy the install-time compiled kernels into this user's numba cache if numba chose one.

    numba caches beside the source only where it may write; otherwise (a user's kernel on a
    package installed by root) it uses a per-user directory and would compile again. Its index
    and data files do not depend on the directory (the index records the source file's
    modification time and size, numba's version and the CPU), so the files ``make install``
    wrote are valid there as they are. Returns the number of files copied.
    """
    in_tree = Path(__file__).resolve().parent / "__pycache__"
    copied = 0
    for kernel in _KERNELS:
        # numba's FunctionCache: where it chose to cache, and the index file's name there
        cache_file = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
        index = getattr(cache_file, "_index_name", None)
        if index is None:  # another numba layout: it compiles as it would have
            continue
        path = Path(cache_file._cache_path)
        if path.resolve() == in_tree or (path / index).exists():
            continue
        source = in_tree / index
        if not source.exists():
            continue
        stem = index[: -len(".nbi")]
        try:
            path.mkdir(parents=True, exist_ok=True)
            for f in in_tree.glob(f"{stem}.*.nbc"):
                shutil.copy2(f, path / f.name)
                copied += 1
            shutil.copy2(source, path / index)  # the index last: it names the data files
            copied += 1
        except OSError as e:  # a read-only home: numba compiles as it would have
            log.info("climate: could not seed numba's cache in %s (%s)", path, e)
    return copied


_seed_user_cache()


def warm() -> None:
    """Compile the kernels (or load them from numba's cache) on a tiny record.

    ``make install`` runs it once, so that the compiled code is cached beside this file.
    """
    x = np.full((1, 4), 50.0)
    params = _params(1, np.zeros(4, dtype=np.int64), 1, np.arange(4.0))
    _block(x, x, None, params)
    _block(x, x, np.zeros((1, 4), dtype=np.int16), params)


# -- the driver -----------------------------------------------------------------------------------


def periods(time_index: pd.DatetimeIndex, freq: str) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Period number of each reading and the period labels, exactly as
    ``Dataset.resample(time=freq)`` bins them (empty periods included)."""
    bins = pd.Series(np.zeros(len(time_index)), index=time_index).resample(freq).count()
    return np.repeat(np.arange(len(bins)), bins.to_numpy()).astype(np.int64), bins.index


def block_size(n_time: int, chunks: tuple | None = None) -> int:
    """Sensors per dask task: whole records, ``BLOCK_BYTES`` per variable (at least one).

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


def _on_dask(arrays: list, params: dict) -> tuple[np.ndarray, ...]:
    """Dask records: one task per block of whole sensor records."""
    import dask

    n_sensor, n_time = arrays[0].shape
    size = block_size(n_time, getattr(arrays[0], "chunks", None))
    block = dask.delayed(_block, pure=True)
    tasks = []
    for start in range(0, n_sensor, size):
        parts = [a[start : start + size] for a in arrays]
        tasks.append(block(parts[0], parts[1], parts[2] if len(parts) > 2 else None, params))
    log.info("climate: %d sensors x %d readings in %d dask tasks of %d sensors",
             n_sensor, n_time, len(tasks), size)
    results = _compute(tasks, "climate metrics")
    return tuple(np.concatenate(part) for part in zip(*results, strict=True))


def _is_dask(a) -> bool:
    return not isinstance(a, np.ndarray) and hasattr(a, "dask")


def assess(
    ds,
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
    NumPy-backed data are computed here on a thread pool, dask-backed ones as dask tasks.
    """
    started = time.perf_counter()
    step = m._step(ds)
    half = int(pd.Timedelta(window) / step) // 2
    time_index = ds.indexes["time"]
    group, labels = periods(time_index, freq)
    seconds = (time_index.values - np.datetime64("1970-01-01")) / np.timedelta64(1, "s")
    params = _params(half, group, len(labels), seconds, percentiles, min_half_width, t_band,
                     rh_band)
    names = ["temperature", "relative_humidity"] + (["quality"] if "quality" in ds else [])
    arrays = [ds[v].transpose("sensor", "time").data for v in names]
    if any(_is_dask(a) for a in arrays):
        out = _on_dask(arrays, params)
    else:
        out = _in_memory(arrays[0], arrays[1], arrays[2] if len(arrays) > 2 else None, params)
    log.info("climate: %d sensors x %d readings, all metrics in %.2f s", *arrays[0].shape,
             time.perf_counter() - started)
    return _tables(ds, *out, labels)


def _tables(ds, counts, stats, ok_total, g_valid, g_ok, g_fail, labels):
    import xarray as xr

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
                **{name: ("sensor", stats[:, i]) for i, name in enumerate(_STATS[:9])},
                "TWPI (years)": ("sensor", 1.0 / (stats[:, 9] / stats[:, 10])),
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
        share = g_ok / g_valid.astype(float)[:, :, None]
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

"""Benchmark: all climate metrics for N sensors x 1 year at 5-minute steps, against a
per-sensor pandas loop over the same data, in the same run.

Default (NumPy data in memory, what ``read_climate`` returns; issue 36):

fresh   ``ds.climate.risk_table()`` on 40 sensors in a new Python process each time (the
        kernels compiled once before, by ``make install`` or a first call): the first call's
        time, numba's cache loading included; the minimum of ``--repeat`` processes;
ours    ``ds.climate.risk_table()`` on ``--sensors`` (default 40, 400 and 1,000) in one
        process, the minimum of ``--repeat`` calls (each on a new Dataset, so nothing is
        reused), readings/s = sensors × steps / seconds; the process's peak resident memory
        before and after the calls, against the input's size;
pandas  the naive loop a user would write: for each sensor one DataFrame, Magnus dew point,
        wood EMC, PI/TWPI, 30-day centred rolling means, EN 15757 percentiles, ASHRAE AA
        monthly (a subset of our metrics); every sensor timed unless ``--pandas-sample``;
        its numbers compared with ours.

``--zarr`` runs the earlier dask form instead: the data written to a Zarr store, read with
``xr.open_zarr`` (the engine's dask tasks), with ``--gateway`` on 1 and 2 gateway workers.

    .venv/bin/python benchmarks/climate.py                       # 40, 400, 1000 sensors
    .venv/bin/python benchmarks/climate.py --sensors 1000 --pandas-sample 100
    .venv/bin/python benchmarks/climate.py --zarr --sensors 1000 --skip-pandas --gateway
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

STEPS = 365 * 288  # one year at 5 minutes
BLOCK = 10         # sensors generated (and written) at a time
CAP_GIB = 4.0


def synthetic(start: int, n: int, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """Seeded indoor climate of sensors ``start … start + n``: T and RH (n, STEPS)."""
    day = np.arange(STEPS) / 288.0
    season = -np.cos(2 * np.pi * (day - 20) / 365.25)
    daily = np.sin(2 * np.pi * (day % 1 - 0.35))
    rng = np.random.default_rng(seed + start)
    t = rng.uniform(16, 23, (n, 1)) + rng.uniform(1, 4, (n, 1)) * season + 0.6 * daily \
        + rng.normal(0, 0.1, (n, STEPS))
    rh = rng.uniform(40, 60, (n, 1)) + rng.uniform(3, 12, (n, 1)) * season - 1.5 * daily \
        + rng.normal(0, 0.6, (n, STEPS))
    return t, rh


def in_memory(sensors: int):
    """The synthetic records as a NumPy-backed Dataset, filled block by block (the process's
    peak memory stays the input's size)."""
    import xarray as xr

    t, rh = np.empty((sensors, STEPS)), np.empty((sensors, STEPS))
    for start in range(0, sensors, BLOCK):
        n = min(BLOCK, sensors - start)
        t[start:start + n], rh[start:start + n] = synthetic(start, n)
    return xr.Dataset(
        {"temperature": (("sensor", "time"), t), "relative_humidity": (("sensor", "time"), rh),
         "quality": (("sensor", "time"), np.zeros((sensors, STEPS), dtype="int16"))},
        coords={"sensor": [f"S{i:05d}" for i in range(sensors)],
                "time": pd.date_range("2025-01-01", periods=STEPS, freq="5min"),
                "room": ("sensor", [f"Room {i // 4:04d}" for i in range(sensors)])})


def write_store(path: Path, sensors: int, seed: int = 2026) -> None:
    """Seeded indoor climate written block by block (never all in memory)."""
    import xarray as xr

    time_index = pd.date_range("2025-01-01", periods=STEPS, freq="5min")
    for start in range(0, sensors, BLOCK):
        n = min(BLOCK, sensors - start)
        t, rh = synthetic(start, n, seed)
        ds = xr.Dataset(
            {"temperature": (("sensor", "time"), t), "relative_humidity": (("sensor", "time"), rh),
             "quality": (("sensor", "time"), np.zeros((n, STEPS), dtype="int16"))},
            coords={"sensor": [f"S{i:05d}" for i in range(start, start + n)], "time": time_index,
                    "room": ("sensor", [f"Room {i // 4:04d}" for i in range(start, start + n)])})
        ds = ds.chunk({"sensor": BLOCK, "time": -1})
        if start == 0:
            ds.to_zarr(path, mode="w", consolidated=True)
        else:
            ds.to_zarr(path, append_dim="sensor", consolidated=True)


OURS = r"""
import json, resource, sys, time
import xarray as xr
import echoes_lab
from echoes_lab.climate import engine
engine.warm()  # compile (or load) the kernels once, not timed
ds = xr.open_zarr(sys.argv[1])
start = time.perf_counter()
table = ds.climate.risk_table()
monthly = ds.climate.ashrae("MS")
seconds = time.perf_counter() - start
table.to_pickle(sys.argv[2]); monthly.to_pickle(sys.argv[3])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak}))
"""


def ours(store: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", OURS, str(store), str(out / "table.pkl"),
                           str(out / "monthly.pkl")], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def naive_pandas(t: np.ndarray, rh: np.ndarray, time_index: pd.DatetimeIndex) -> dict:
    """What one writes by hand for one sensor with pandas (and the Magnus/EMC/PI formulas)."""
    df = pd.DataFrame({"t": t, "rh": rh}, index=time_index)
    b, c = 17.625, 243.04  # Magnus (Alduchov & Eskridge 1996); a cancels in the dew point
    gamma = np.log(df["rh"] / 100) + b * df["t"] / (c + df["t"])
    df["dp"] = c * gamma / (b - gamma)
    tt, h = df["t"], df["rh"] / 100
    w = 349 + 1.29 * tt + 0.0135 * tt ** 2
    k = 0.805 + 0.000736 * tt - 0.00000273 * tt ** 2
    k1 = 6.27 - 0.00938 * tt - 0.000303 * tt ** 2
    k2 = 1.91 + 0.0407 * tt - 0.000293 * tt ** 2
    df["emc"] = 1800 / w * (k * h / (1 - k * h) + (k1 * k * h + 2 * k1 * k2 * (k * h) ** 2)
                            / (1 + k1 * k * h + k1 * k2 * (k * h) ** 2))
    df["pi"] = np.exp((95220 - 134.9 * df["rh"]) / (8.314 * (df["t"] + 273.15))
                      + 0.0284 * df["rh"] - 28.023) / 365
    half = 30 * 288 // 2
    seasonal = df["rh"].rolling(2 * half + 1, center=True, min_periods=half).mean()
    fluct = df["rh"] - seasonal
    p7, p93 = fluct.quantile(0.07), fluct.quantile(0.93)
    p7, p93 = min(p7, -10), max(p93, 10)
    exc = ((fluct < p7) | (fluct > p93)) & seasonal.notna()
    t_season = df["t"].rolling(2 * half + 1, center=True, min_periods=half).mean()
    rh_mean, t_mean = df["rh"].mean(), df["t"].mean()
    aa = ((df["rh"] - rh_mean).abs() <= 5) \
        & ((df["t"] - t_season.clip(t_mean - 5, t_mean + 5)).abs() <= 2) \
        & (df["rh"] < 75) & (15 <= t_mean <= 25)
    monthly_aa = aa.resample("MS").mean()
    return {"dew point max": df["dp"].max(), "EMC min": df["emc"].min(), "EMC max": df["emc"].max(),
            "TWPI (years)": 1 / (1 / df["pi"]).mean(), "EN 15757 excursions": exc.mean(),
            "T mean": t_mean, "RH max": df["rh"].max(), "AA monthly": monthly_aa.to_numpy()}


def pandas_loop(store: Path, sensors: int) -> tuple[float, list[dict]]:
    import zarr

    root = zarr.open_group(str(store), mode="r")
    time_index = pd.date_range("2025-01-01", periods=STEPS, freq="5min")
    start = time.perf_counter()
    rows = [naive_pandas(root["temperature"][i], root["relative_humidity"][i], time_index)
            for i in range(sensors)]
    return time.perf_counter() - start, rows


def agreement(rows: list[dict], table: pd.DataFrame, monthly: pd.DataFrame) -> float:
    worst = 0.0
    keys = ("dew point max", "EMC min", "EMC max", "TWPI (years)", "EN 15757 excursions",
            "T mean", "RH max")
    for i, row in enumerate(rows):
        for key in keys:
            worst = max(worst, abs(row[key] - table.iloc[i][key]) / max(1.0, abs(row[key])))
        aa = monthly[monthly["sensor"] == table.index[i]]["AA share"].to_numpy()
        worst = max(worst, np.abs(aa - row["AA monthly"]).max())
    return worst


FRESH = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
import echoes_lab
from climate import in_memory
ds = in_memory(int(sys.argv[1]))
if sys.argv[3] == "warmed":  # numba set up and the kernels loaded (read_climate's thread)
    from echoes_lab.climate import engine
    engine.warm()
start, cpu = time.perf_counter(), time.process_time()
ds.climate.risk_table()
print(json.dumps({"first_call": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""

MEMORY = r"""
import gc, json, resource, sys, time
import psutil
sys.path.insert(0, sys.argv[2])
import echoes_lab
from echoes_lab.climate import engine
from climate import in_memory
engine.warm()  # compiled at install; loading it is timed by the fresh-process runs
ds = in_memory(int(sys.argv[1]))
gc.collect()
before = psutil.Process().memory_info().rss
times, cpus = [], []
for _ in range(int(sys.argv[3])):
    fresh = ds.copy()  # new variables: the accessor's kept results are not reused
    start, cpu = time.perf_counter(), time.process_time()
    table = fresh.climate.risk_table()
    times.append(time.perf_counter() - start)
    cpus.append(time.process_time() - cpu)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
fresh.climate.ashrae("MS").to_pickle(sys.argv[5])
table.to_pickle(sys.argv[4])
print(json.dumps({"seconds": min(times), "all": times, "cpu": min(cpus), "before": before,
                  "peak": peak,
                  "input": sum(int(ds[v].nbytes) for v in ds.data_vars)}))
"""


def child(code: str, *args) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_mode(args, tmp: Path) -> None:
    here = Path(__file__).resolve().parent
    sizes = [args.sensors] if args.sensors else [40, 400, 1000]
    for state in ("cold", "warmed"):
        runs = [child(FRESH, 40, here, state) for _ in range(args.repeat)]
        firsts = [r["first_call"] for r in runs]
        print(f"fresh process, 40 sensors x 1 year, numba {state} before the call: first "
              f"risk_table() {min(firsts):.3f} s, {min(r['cpu'] for r in runs):.3f} CPU s "
              f"(min of {args.repeat}; all {', '.join(f'{x:.3f}' for x in firsts)})")
    for n in sizes:
        r = child(MEMORY, n, here, args.repeat, tmp / "table.pkl", tmp / "monthly.pkl")
        readings = n * STEPS
        extra = max(0, r["peak"] - r["before"])
        print(f"ours, {n} sensors ({readings:,} readings): {r['seconds']:.3f} s "
              f"(min of {args.repeat}: {', '.join(f'{x:.3f}' for x in r['all'])}) = "
              f"{readings / r['seconds'] / 1e6:.1f} M readings/s; {r['cpu']:.3f} CPU s "
              f"({r['cpu'] * 1e9 / readings:.0f} CPU ns/reading); input {r['input'] / 2**20:.0f} "
              f"MiB, peak resident growth during the calls {extra / 2**20:.0f} MiB "
              f"(memory {(r['input'] + extra) / r['input']:.2f}x the input)")
        if args.skip_pandas:
            continue
        sample = min(n, args.pandas_sample or n)
        ds = in_memory(sample)
        t, rh = ds["temperature"].to_numpy(), ds["relative_humidity"].to_numpy()
        time_index = ds.indexes["time"]
        start = time.perf_counter()
        rows = [naive_pandas(t[i], rh[i], time_index) for i in range(sample)]
        total = (time.perf_counter() - start) * n / sample
        worst = agreement(rows, pd.read_pickle(tmp / "table.pkl"),
                          pd.read_pickle(tmp / "monthly.pkl"))
        label = "measured" if sample == n else f"{sample} timed, EXTRAPOLATED"
        print(f"  pandas loop: {total:.2f} s ({label}); ratio pandas / ours = "
              f"{total / r['seconds']:.1f}; largest relative difference {worst:.1e}")
        del ds, t, rh


GATEWAY = r"""
import time, xarray as xr
from echoes_lab import compute
from echoes_lab.climate import engine
client = compute.cluster(workers={workers}, worker_cores=1, worker_memory=2)
client.wait_for_workers({workers}, timeout=300)
ds = xr.open_zarr({store!r})
client.run(engine.warm)  # every worker compiles the kernels once, not timed
start = time.perf_counter()
ds.climate.risk_table()
print("SECONDS", time.perf_counter() - start)
client.shutdown()
"""


def on_gateway(store: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
    from harness import Hub, new_root

    hub = Hub(new_root("echoes-bench-"), gateway={"max_workers": 2}).start()
    try:
        hub.create_user("bench")
        hub.start_server("bench")
        times = {}
        for workers in (1, 2):
            out = hub.execute("bench", GATEWAY.format(workers=workers, store=str(store)),
                              timeout=1800)
            if out["errors"]:
                raise RuntimeError(out["errors"])
            times[workers] = float(out["stdout"].split("SECONDS")[1].split()[0])
        return times
    finally:
        hub.shutdown()
        shutil.rmtree(hub.root, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=0,
                    help="sensors (default: 40, 400 and 1,000; --zarr: 1,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (the minimum counts)")
    ap.add_argument("--pandas-sample", type=int, default=0,
                    help="time the pandas loop on this many sensors only (0: all)")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--zarr", action="store_true", help="dask: the data in a Zarr store")
    ap.add_argument("--gateway", action="store_true", help="--zarr on 1 vs 2 gateway workers")
    ap.add_argument("--store", help="Zarr store to use (default: a temporary one, deleted)")
    args = ap.parse_args(argv)
    # sensor names as zarr v3 strings: their spec is "unstable", which changes nothing here
    warnings.filterwarnings("ignore", module="zarr")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
    tmp = Path(tempfile.mkdtemp(prefix="echoes-climate-bench-"))
    try:
        if args.zarr:
            zarr_mode(args, tmp)
        else:
            memory_mode(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end; benchmark process peak memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


def zarr_mode(args, tmp: Path) -> None:
    sensors = args.sensors or 1000
    os.chmod(tmp, 0o755)  # the gateway's workers run under the user's own account
    store = Path(args.store) if args.store else tmp / "climate.zarr"
    if not (store / "zarr.json").exists() and not (store / ".zgroup").exists():
        start = time.perf_counter()
        write_store(store, sensors)
        print(f"wrote {sensors} sensors x {STEPS} steps "
              f"({sensors * STEPS:,} readings per variable) in "
              f"{time.perf_counter() - start:.0f} s (not timed below)")
    result = ours(store, tmp)
    peak = result["peak"] / 2**30
    print(f"ours: {result['seconds']:.1f} s for all metrics "
          f"({sensors * STEPS / result['seconds']:,.0f} readings/s), "
          f"peak resident memory {peak:.2f} GiB "
          f"({'within' if peak <= CAP_GIB else 'OVER'} the {CAP_GIB:.0f} GiB cap)")
    if not args.skip_pandas:
        n = args.pandas_sample or sensors
        seconds, rows = pandas_loop(store, n)
        total = seconds * sensors / n
        worst = agreement(rows, pd.read_pickle(tmp / "table.pkl"),
                          pd.read_pickle(tmp / "monthly.pkl"))
        label = "measured" if n == sensors else f"{n} timed, EXTRAPOLATED"
        print(f"pandas loop: {total:.1f} s ({label}); ratio pandas / ours = "
              f"{total / result['seconds']:.2f}; largest relative difference {worst:.1e}")
    if args.gateway:
        times = on_gateway(store)
        print(f"gateway: 1 worker {times[1]:.1f} s, 2 workers {times[2]:.1f} s; "
              f"speed-up {times[1] / times[2]:.2f}")


if __name__ == "__main__":
    main()

"""Indoor-climate logger data: several rooms over several years at 15-minute steps.

Temperature follows a seasonal and a daily cycle, relative humidity answers it as it does in
a building with some buffering; on top come the faults real logs have: a two-week gap (logger
battery), a day of duplicated timestamps (a re-read logger appended twice), a few impossible
readings (RH above 100 %), and one room whose logger records in degrees Fahrenheit (its
``temperature_unit`` column says ``degF``). Seeded: the same seed and size give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from echoes_lab.demo.entry import entry

ROOMS = [  # sensor, room, mean T (°C), T swing, mean RH (%), RH swing
    ("L01", "Gallery 1", 20.5, 2.5, 50.0, 8.0),
    ("L03", "Gallery 3", 21.0, 3.5, 47.0, 12.0),
    ("S0A", "Store A", 16.0, 1.5, 52.0, 4.0),
    ("A0B", "Archive B", 18.0, 2.0, 45.0, 6.0),
]


def logs(years: int, step: str, seed: int, sensors: list[tuple] = ROOMS) -> pd.DataFrame:
    """Logger readings in long form: time, sensor, room, temperature, its unit, RH."""
    rng = np.random.default_rng(seed)
    steps = int(years * 365 * 86400 / pd.Timedelta(step).total_seconds())
    time = pd.date_range("2024-01-01", periods=steps, freq=step)
    day = (time - time[0]).total_seconds().to_numpy() / 86400.0
    frames = []
    for k, (sensor, room, t0, dt, rh0, drh) in enumerate(sensors):
        season = -np.cos(2 * np.pi * (day - 20) / 365.25)
        daily = np.sin(2 * np.pi * (day % 1 - 0.35))
        temp = t0 + dt * season + 0.6 * daily + rng.normal(0, 0.15, len(day)).cumsum() * 0.01
        temp += rng.normal(0, 0.1, len(day))
        rh = rh0 + drh * season * 0.8 - 1.5 * daily + rng.normal(0, 0.6, len(day))
        frame = pd.DataFrame({"time": time, "sensor": sensor, "room": room,
                              "temperature": temp.round(2), "temperature_unit": "degC",
                              "relative_humidity": rh.round(1)})
        if k == 1:  # this room's logger is set to Fahrenheit
            frame["temperature"] = (frame["temperature"] * 9 / 5 + 32).round(2)
            frame["temperature_unit"] = "degF"
        if k == 2:  # two weeks without battery
            frame = frame[~frame["time"].between("2024-07-01", "2024-07-14 23:59")]
        if k == 3:  # one day appended twice, and a few impossible readings
            again = frame[frame["time"].dt.strftime("%Y-%m-%d") == "2024-03-05"]
            frame = pd.concat([frame, again]).sort_values("time", kind="stable")
            frame.loc[frame.sample(n=5, random_state=seed).index, "relative_humidity"] = 104.5
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write(out_dir: Path, size: str = "small", seed: int = 1757) -> list[dict]:
    if size == "large":
        return _write_large(Path(out_dir), seed)
    path = Path(out_dir) / "climate" / "loggers.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    logs(2, "15min", seed).to_csv(path, index=False, lineterminator="\n",
                                  date_format="%Y-%m-%dT%H:%M:%S")
    return [entry(
        __name__, seed, "demo-climate", "Demo indoor-climate logs (synthetic)",
        f"{len(ROOMS)} loggers, 2 years at 15-minute steps: temperature and relative humidity "
        "in galleries, a store and an archive, with a gap, duplicated timestamps, impossible "
        "RH readings and one logger in °F.",
        [str(path.relative_to(out_dir))], parse_dates=["time"])]


def _write_large(out_dir: Path, seed: int, sensors: int = 1000, block: int = 50) -> list[dict]:
    """1,000 sensors x 1 year at 5 minutes (~105 M readings per variable) as a chunked Zarr
    store, written 50 sensors at a time so memory stays near 300 MB."""

    store = out_dir / "climate" / "loggers-large.zarr"
    store.parent.mkdir(parents=True, exist_ok=True)
    for first in range(0, sensors, block):
        rooms = [(f"S{i:04d}", f"Room {i // 4}", 19.0 + i % 5, 2.0, 48.0 + i % 7, 6.0)
                 for i in range(first, min(first + block, sensors))]
        frame = logs(1, "5min", seed + first, rooms).drop(columns=["temperature_unit", "room"])
        ds = (frame.drop_duplicates(["sensor", "time"]).set_index(["sensor", "time"]).to_xarray()
              .assign_coords(room=("sensor", [r[1] for r in rooms]))
              .chunk({"sensor": block, "time": 105_120}))
        ds = ds.assign_coords(sensor=ds["sensor"].astype("U5"), room=ds["room"].astype("U12"))
        ds["temperature"].attrs["units"] = "degC"
        ds["relative_humidity"].attrs["units"] = "%"
        ds.to_zarr(store, mode="w" if first == 0 else "a",
                   append_dim=None if first == 0 else "sensor", consolidated=False)
    files = sorted(str(p.relative_to(out_dir)) for p in store.rglob("*") if p.is_file())
    return [entry(
        __name__, seed, "demo-climate-large", "Benchmark-size indoor-climate logs (synthetic)",
        f"{sensors} sensors, one year at 5-minute steps, as a chunked Zarr store.",
        files, format="zarr", loader="echoes_lab.datasets:read_zarr")]

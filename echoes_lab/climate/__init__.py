"""Indoor climate of collections: logger readers, conservation metrics, plots.

* :mod:`echoes_lab.climate.readers` — logger exports (CSV, NetCDF, Zarr) into
  ``Dataset(sensor, time)`` with faults flagged, never dropped;
* :mod:`echoes_lab.climate.metrics` — the physics and the standards (dew point, EMC, PI/TWPI,
  mould, EN 15757, ASHRAE) and the ``ds.climate`` accessor;
* :mod:`echoes_lab.climate.plots` — the accessor's plots.

The formulas are importable from here as before (``echoes_lab.climate.dew_point``).
"""

from echoes_lab.climate.metrics import (
    ClimateAccessor,
    absolute_humidity,
    dew_point,
    emc_wood,
    mixing_ratio,
    mould_rh_limit,
    mould_risk,
    moving_average,
    preservation_index,
    saturation_vapour_pressure,
    twpi,
    vapour_pressure,
)
from echoes_lab.climate.readers import read_climate

__all__ = [
    "ClimateAccessor", "absolute_humidity", "dew_point", "emc_wood", "mixing_ratio",
    "mould_rh_limit", "mould_risk", "moving_average", "preservation_index",
    "saturation_vapour_pressure", "twpi", "vapour_pressure", "read_climate",
]

"""Hazard layers against heritage places: one row per site with the worst class it lies in.

:func:`echoes_lab.sites.hazard_join` (and ``gdf.sites.hazards``) says which hazard polygons each
site intersects and counts sites per class; :func:`risk_table` ranks the classes, so that a
site in several polygons is reported once, with the most severe class, and a register can be
sorted by exposure.

Ranked classes of open layers (most severe first) are kept here as data, with the meaning
their publisher gives:

:data:`ROFRS_BANDS`
    The Environment Agency's *Risk of Flooding from Rivers and Sea* (England), column
    ``prob_4band``: the chance of flooding in any year, flood defences and their condition
    taken into account.

References
----------
Environment Agency, *Risk of Flooding from Rivers and Sea (RoFRS): product description*
(data.gov.uk dataset "Risk of Flooding from Rivers and Sea", Open Government Licence v3.0):
High, 3.3 % (1 in 30) or more each year; Medium, less than 3.3 % but 1 % (1 in 100) or more;
Low, less than 1 % but 0.1 % (1 in 1,000) or more; Very Low, less than 0.1 %.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from echoes_lab.errors import DataError

#: EA RoFRS ``prob_4band`` classes, most severe first, with the yearly chance of flooding
ROFRS_BANDS: dict[str, str] = {
    "High": "3.3 % (1 in 30) or more each year",
    "Medium": "1 % to 3.3 % each year",
    "Low": "0.1 % to 1 % each year",
    "Very Low": "less than 0.1 % each year",
}


def risk_table(sites: gpd.GeoDataFrame, hazards: gpd.GeoDataFrame, by: str,
               order) -> pd.DataFrame:
    """One row per site: the hazard classes it lies in and the most severe of them.

    Parameters
    ----------
    sites
        A table from :func:`echoes_lab.read_sites` (columns ``id``, ``name``, geometry).
    hazards
        Hazard polygons with a class column ``by`` and a coordinate system.
    by
        The class column, e.g. ``"prob_4band"`` for the EA flood-risk bands.
    order
        The classes, most severe first (a list, or a dict such as :data:`ROFRS_BANDS` whose
        values describe them); required, since only the layer's publisher says which class is
        worse. A class in the layer that is not in ``order`` is an error: a ranking that
        silently skipped a class would misreport the worst one.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``name``, ``classes`` (the classes of the polygons the site intersects, most
        severe first), ``worst`` (``'none'`` outside every polygon), ``rank`` (0 for the most
        severe class; ``len(order)`` for ``'none'``) and, where ``order`` is a dict,
        ``meaning``; sorted by rank, then id.
    """
    from echoes_lab.sites import hazard_join

    joined = hazard_join(sites, hazards, by)
    ranks = {str(c): i for i, c in enumerate(order)}
    present = set(hazards[by].dropna().astype(str)) - {"none"}
    unknown = sorted(present - set(ranks))
    if unknown:
        msg = (f"hazard layer column '{by}' has class(es) {unknown} that are not in order="
               f"{list(ranks)}; add them in their place (most severe first)")
        raise DataError(msg)
    none = len(ranks)
    joined["rank"] = joined[by].map(lambda c: ranks.get(c, none))
    grouped = joined.sort_values("rank").groupby("id", sort=False)
    table = grouped.agg(name=("name", "first"), rank=("rank", "min"),
                        classes=(by, lambda s: [c for c in dict.fromkeys(s) if c != "none"]))
    table["worst"] = [cls[0] if cls else "none" for cls in table["classes"]]
    if isinstance(order, dict):
        table["meaning"] = table["worst"].map(lambda c: order.get(c, ""))
    table = table.reset_index()
    columns = ["id", "name", "classes", "worst", "rank"] + (
        ["meaning"] if isinstance(order, dict) else [])
    return table[columns].sort_values(["rank", "id"], ignore_index=True)

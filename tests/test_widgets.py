"""The collection explorer: filters, slider, table and timeline update together."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from echoes_lab.collections import records  # noqa: E402
from echoes_lab.widgets import explore  # noqa: E402


def test_filters_and_slider_drive_table_and_timeline(demo_data):
    df = records.read(demo_data / "collection" / "objects.csv", preset="echoes-demo")
    ex = explore(df)
    assert len(ex.selection) == len(df)
    assert f"{len(df):,}</b> of" in ex.count.value

    ex.filters["object_type"].value = ("sculpture",)
    sel = ex.selection
    assert len(sel) == (df["object_type"].str.strip() == "sculpture").sum()
    assert f"<b>{len(sel):,}</b>" in ex.count.value
    assert "painting" not in ex.table.value.split("<tbody>")[1]

    ex.include_undated.value = False
    ex.years.value = (1800, 1850)
    sel = ex.selection
    assert ((sel["date_latest"] >= 1800) & (sel["date_earliest"] <= 1850)).all()
    assert (sum(b.get_height() for b in ex.figure.axes[0].patches)
            == sel["date_earliest"].notna().sum())
    assert ex.figure.axes[0].get_title().startswith(f"{len(sel):,} of")
    # one timeline shown, replaced at each change (not appended below the last one)
    assert len(ex.timeline.outputs) == 1 and "image/png" in ex.timeline.outputs[0]["data"]

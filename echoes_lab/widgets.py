"""Interactive exploration of a collection table in the notebook (ipywidgets)."""

from __future__ import annotations

import io

import ipywidgets as w
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image

TABLE_COLUMNS = ["id", "title", "creators", "date_text", "object_type", "materials"]


class Explorer(w.VBox):
    """Facet filters, a date-range slider, a table and a timeline that update together.

    ``explorer.selection`` is the filtered DataFrame at any moment.
    """

    def __init__(
        self, df: pd.DataFrame, facets: tuple[str, ...] = ("object_type",), rows: int = 15
    ):
        self.df = df if "date_parsed" in df.columns else df.records.parse_dates()
        self.rows = rows
        self.filters: dict[str, w.SelectMultiple] = {}
        for field in facets:
            options = (
                self.df[field].dropna().astype(str).str.strip().value_counts().index[:50].tolist()
            )
            self.filters[field] = w.SelectMultiple(
                options=options, description=field, rows=min(6, len(options) or 1)
            )
        years = self.df["date_earliest"].dropna()
        lo, hi = (int(years.min()), int(self.df["date_latest"].max())) if len(years) else (0, 1)
        self.years = w.IntRangeSlider(
            value=(lo, hi),
            min=lo,
            max=hi,
            description="years",
            continuous_update=False,
            layout=w.Layout(width="90%"),
        )
        self.include_undated = w.Checkbox(value=True, description="include undated")
        self.count = w.HTML()
        self.table = w.HTML()
        self.timeline = w.Output()
        for control in [*self.filters.values(), self.years, self.include_undated]:
            control.observe(self._update, names="value")
        super().__init__(
            [
                w.HBox(list(self.filters.values())),
                self.years,
                self.include_undated,
                self.count,
                self.timeline,
                self.table,
            ]
        )
        self._update()

    @property
    def selection(self) -> pd.DataFrame:
        df = self.df
        keep = pd.Series(True, index=df.index)
        for field, control in self.filters.items():
            if control.value:
                keep &= df[field].astype("string").str.strip().isin(control.value).fillna(False)
        lo, hi = self.years.value
        dated = df["date_earliest"].notna()
        in_range = (df["date_latest"] >= lo) & (df["date_earliest"] <= hi)
        keep &= in_range.fillna(False) | (~dated & self.include_undated.value)
        return df[keep]

    def _update(self, change=None):
        sel = self.selection
        self.count.value = f"<b>{len(sel):,}</b> of {len(self.df):,} records"
        shown = sel[[c for c in TABLE_COLUMNS if c in sel.columns]].head(self.rows).copy()
        if "creators" in shown:
            shown["creators"] = shown["creators"].map(
                lambda v: "; ".join(v) if isinstance(v, list) else v
            )
        self.table.value = (
            shown.to_html(index=False, na_rep="", escape=True)
            if len(shown)
            else "<i>no records match</i>"
        )
        self.figure = sel.records.timeline()
        show_figure(self.timeline, self.figure)


def show_figure(out: w.Output, figure) -> None:
    """Show a matplotlib ``figure`` in ``out``, replacing what it showed, and close it.

    The PNG goes into the widget's outputs directly, not through ``with out:``: capturing by
    message id can leave a headless run (papermill, nbclient) waiting for a reply that never
    comes (jupyter/nbclient#312), and the PNG does not depend on the kernel's backend.
    """
    png = io.BytesIO()
    figure.savefig(png, format="png", bbox_inches="tight")
    plt.close(figure)
    out.outputs = ()
    out.append_display_data(Image(data=png.getvalue(), format="png"))


def explore(
    df: pd.DataFrame, facets: tuple[str, ...] = ("object_type",), rows: int = 15
) -> Explorer:
    """Explore a normalised collection table: ``echoes_lab.widgets.explore(df)``."""
    return Explorer(df, facets=facets, rows=rows)


__all__ = ["Explorer", "explore", "show_figure"]

"""The dashboard's charts: Prometheus range queries drawn as SVG by matplotlib on the server.

The page carries each chart inline (no script, nothing fetched from elsewhere), so it reads
the same offline and prints. Values about people below ``[metrics] min_group`` are not drawn
(a gap), as the figures' table withholds them.
"""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, datetime

from echoes_lab.hub.i18n import N_

#: (title, PromQL, label, counts people): the series charted over the chosen period (titles
#: marked for the catalogue: the page draws them in its language)
CHARTS = [
    (N_("active users, last 24 h"), 'jupyterhub_active_users{period="24h"}', "", True),
    (N_("servers running"), "jupyterhub_running_servers", "", True),
    (N_("report runs by status"), "sum by (status) (echoes_reports_runs)", "status", False),
    (N_("annotations by actor"), "sum by (actor) (echoes_commons_annotations)", "actor", False),
    (N_("datasets opened"), "sum by (dataset) (echoes_datasets_opened_total)", "dataset", False),
]


def withheld(series: list[tuple[float, float]], floor: int) -> list[tuple[float, float | None]]:
    """``series`` with values about fewer than ``floor`` people (but more than none) as None."""
    return [(t, None if 0 < v < floor else v) for t, v in series]


def svg(title: str, series: dict[str, list[tuple[float, float | None]]],
        window: tuple[float, float]) -> str:
    """One line chart (step lines: counts change at a scrape) as an inline ``<svg>``.

    ``series`` maps a label ("" for a single series) to (epoch seconds, value) points; a value
    None (withheld) is a gap. ``window`` is the period queried (epoch seconds), the x axis.
    """
    # imported with the first chart drawn, not with the service: matplotlib, numpy and PIL are
    # ~20 MiB of the metrics service's process (the host's) that an idle hub never uses (issue 36)
    import matplotlib
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    # text stays text in the SVG (searchable, smaller); ids stable from one page to the next
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "echoes-usage"

    fig = Figure(figsize=(5.2, 2.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlim(*(datetime.fromtimestamp(t, UTC) for t in window))
    drawn = False
    for label, points in sorted(series.items()):
        if not points:
            continue
        xs = [datetime.fromtimestamp(t, UTC) for t, _ in points]
        ys = [math.nan if v is None else v for _, v in points]  # a gap
        marker = "o" if len(points) == 1 else None
        ax.step(xs, ys, where="post", label=label or None, marker=marker, markersize=3)
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center",
                color="0.4")
        ax.set_xticks([])
    else:
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_ylim(bottom=0)
        if any(series):
            ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.tick_params(labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    # inline: from <svg …> on, sized by the page's width
    text = text[text.index("<svg"):]
    return re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
                  rf'<svg \1role="img" aria-label="{_attr(title)}" class="w-100 h-auto"',
                  text, count=1)


def _attr(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))

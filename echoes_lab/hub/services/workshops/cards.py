"""Sign-in cards for the seats: a sheet to print (HTML, eight cards per A4 page) and a CSV."""

from __future__ import annotations

import csv
import io
import os
from html import escape
from pathlib import Path

_STYLE = """
@page { size: A4; margin: 12mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 0; }
.sheet { display: grid; grid-template-columns: 1fr 1fr; gap: 6mm; }
.card { border: 1px dashed #555; padding: 5mm; height: 58mm; box-sizing: border-box;
        break-inside: avoid; page-break-inside: avoid; }
.card h2 { font-size: 13pt; margin: 0 0 3mm 0; }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 1.5mm 4mm; margin: 0;
          font-size: 12pt; }
.card dt { color: #444; }
.card dd { margin: 0; font-family: "DejaVu Sans Mono", monospace; font-size: 14pt; }
.card p { font-size: 9pt; color: #444; margin: 3mm 0 0 0; }
"""


def _rows(seats: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(seats.items())


def render_cards(workshop: str, url: str, ends: str, passwords: dict[str, str]) -> dict[str, bytes]:
    """``{"cards.html": ..., "cards.csv": ...}``: the printable sheet and the table, as bytes."""
    cards = []
    for seat, password in _rows(passwords):
        cards.append(
            f'<div class="card"><h2>ECHOES Lab workshop: {escape(workshop)}</h2><dl>'
            f"<dt>Address</dt><dd>{escape(url)}</dd>"
            f"<dt>User name</dt><dd>{escape(seat)}</dd>"
            f"<dt>Password</dt><dd>{escape(password)}</dd></dl>"
            f"<p>Valid until {escape(ends)}. Your work stays in your folder; the trainer "
            f"collects it at the end.</p></div>"
        )
    html = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Sign-in cards: {escape(workshop)}</title><style>{_STYLE}</style></head>"
        f'<body><div class="sheet">\n' + "\n".join(cards) + "\n</div></body></html>\n"
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["workshop", "address", "username", "password", "valid_until"])
    for seat, password in _rows(passwords):
        writer.writerow([workshop, url, seat, password, ends])
    return {"cards.html": html.encode(), "cards.csv": out.getvalue().encode()}


def write_cards(
    folder: Path, workshop: str, url: str, ends: str, passwords: dict[str, str]
) -> tuple[Path, Path]:
    """Write ``cards.html`` and ``cards.csv`` (mode 0600: they hold passwords) into ``folder``.

    For the hub's own state directory only (root's); a user's home is written as its owner
    (:meth:`~echoes_lab.hub.services.workshops.homes.Homes.put_files` with :func:`render_cards`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in render_cards(workshop, url, ends, passwords).items():
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), 0o600)
        paths.append(path)
    return tuple(paths)

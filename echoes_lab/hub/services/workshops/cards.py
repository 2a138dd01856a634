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
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 1.5mm 4mm; margin: 0; font-size: 12pt; }
.card dt { color: #444; }
.card dd { margin: 0; font-family: "DejaVu Sans Mono", monospace; font-size: 14pt; }
.card p { font-size: 9pt; color: #444; margin: 3mm 0 0 0; }
"""


def _rows(seats: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(seats.items())


def write_cards(folder: Path, workshop: str, url: str, ends: str, passwords: dict[str, str]) -> tuple[Path, Path]:
    """Write ``cards.html`` and ``cards.csv`` (mode 0600: they hold passwords) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
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
    html = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Sign-in cards: {escape(workshop)}</title><style>{_STYLE}</style></head>"
            f'<body><div class="sheet">\n' + "\n".join(cards) + "\n</div></body></html>\n")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["workshop", "address", "username", "password", "valid_until"])
    for seat, password in _rows(passwords):
        writer.writerow([workshop, url, seat, password, ends])
    paths = folder / "cards.html", folder / "cards.csv"
    for path, text in zip(paths, (html, out.getvalue())):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(path, 0o600)
    return paths

"""A small multispectral image cube with a wavelength coordinate, as an ENVI file pair.

A painted panel seen in 12 bands from 400 to 1000 nm: three "pigment" regions with different
spectra (one that turns bright in the infrared, as some blues and greens do), a retouching
that looks the same in the visible and differs in the infrared, and sensor noise. Written as
ENVI (``.hdr`` text header + ``.img`` raw, band-sequential float32, little-endian), the format
of most imaging spectrometers. Seeded: same seed and size, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from echoes_lab.demo.entry import entry

WAVELENGTHS = np.linspace(400, 1000, 12)


def cube(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    wl = WAVELENGTHS
    ground = 0.75 + 0.15 * (wl - 400) / 600
    blue = (0.15 + 0.25 * np.exp(-0.5 * ((wl - 450) / 40) ** 2)
            + 0.55 / (1 + np.exp(-(wl - 760) / 25)))
    red = 0.08 + 0.6 / (1 + np.exp(-(wl - 600) / 15))
    retouch = red.copy()
    retouch[wl > 700] = 0.25  # matches the red in the visible, absorbs in the infrared
    data = np.broadcast_to(ground, (height, width, wl.size)).copy()
    data[(x - width * 0.3) ** 2 + (y - height * 0.5) ** 2 < (min(height, width) * 0.25) ** 2] = blue
    red_zone = (x > width * 0.55) & (x < width * 0.9) & (y > height * 0.2) & (y < height * 0.8)
    data[red_zone] = red
    data[red_zone & (y > height * 0.45) & (y < height * 0.55)] = retouch
    data += rng.normal(0, 0.005, data.shape)
    return data.astype("<f4")


def write(out_dir: Path, size: str = "small", seed: int = 1800) -> list[dict]:
    height, width = {"small": (48, 64), "large": (2048, 2048)}[size]
    folder = Path(out_dir) / "spectral"
    folder.mkdir(parents=True, exist_ok=True)
    data = cube(height, width, seed)
    # band-sequential: all of band 1, then band 2, ...
    (folder / "panel.img").write_bytes(np.ascontiguousarray(data.transpose(2, 0, 1)).tobytes())
    header = [
        "ENVI",
        "description = {ECHOES Lab demo panel, synthetic}",
        f"samples = {width}", f"lines = {height}", f"bands = {WAVELENGTHS.size}",
        "header offset = 0", "file type = ENVI Standard", "data type = 4", "interleave = bsq",
        "byte order = 0", "wavelength units = Nanometers",
        "wavelength = {" + ", ".join(f"{w:.1f}" for w in WAVELENGTHS) + "}",
    ]
    (folder / "panel.hdr").write_text("\n".join(header) + "\n")
    return [entry(
        __name__, seed, "demo-spectral", "Demo multispectral cube of a painted panel (synthetic)",
        f"{height} x {width} pixels, {WAVELENGTHS.size} bands 400-1000 nm, ENVI format: three "
        "pigment regions and a retouching that shows only in the infrared.",
        ["spectral/panel.hdr", "spectral/panel.img"], format="envi",
        loader="echoes_lab.spectral:read_envi")]

"""PCA of an image cube larger than memory: echoes_lab.spectral.pca vs scikit-learn's PCA.

A declared memory cap is enforced on every run: each PCA runs in a child process whose
resident memory the parent samples every 10 ms with psutil, killing it above the cap; the
kernel's own high-water mark (``ru_maxrss``) is reported by the child and checked too.

1. ours on an ENVI cube twice as large as the cap (read lazily, covariance accumulated chunk
   by chunk by dask) must finish under the cap;
2. scikit-learn's ``PCA().fit`` (the stock tool: load the cube with Spectral Python, reshape,
   fit) on cubes of 1/16, 1/8, 1/4, 1/2, 1 and 2 × the cap: the largest that finishes under
   the cap is the comparison cube;
3. ours on that same cube: the throughput ratio (pixels per second, ours / scikit-learn).

Run: ``.venv/bin/python benchmarks/pca.py [--cap-mb 512] [--bands 64] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_cube(folder: Path, nbytes: int, bands: int, seed: int = 0) -> tuple[Path, int]:
    """An ENVI float32 BSQ cube of about ``nbytes``: 4 smooth sources mixed, plus noise; written
    band by band so writing needs little memory."""
    side = int(np.sqrt(nbytes / (4 * bands)))
    hdr = folder / f"cube-{side}.hdr"
    raw = hdr.with_suffix(".img")
    if not raw.exists() or raw.stat().st_size != side * side * bands * 4:
        rng = np.random.default_rng(seed)
        mix = rng.uniform(0.05, 0.9, (4, bands))
        y = np.linspace(0, 6, side, dtype=np.float32)[:, None]
        x = np.linspace(0, 6, side, dtype=np.float32)[None, :]
        maps = [
            np.sin(y) ** 2 + 0 * x,
            np.cos(x) ** 2 + 0 * y,
            np.sin(x + y) ** 2,
            np.cos(0.5 * x * y) ** 2,
        ]
        with open(raw, "wb") as out:
            for b in range(bands):
                band = sum(mix[k, b] * maps[k] for k in range(4)).astype(np.float32)
                band += rng.normal(0, 0.01, band.shape).astype(np.float32)
                out.write(band.astype("<f4").tobytes())
        wl = ", ".join(f"{w:.1f}" for w in np.linspace(400, 1000, bands))
        hdr.write_text(
            f"ENVI\nsamples = {side}\nlines = {side}\nbands = {bands}\nheader offset = 0\n"
            f"file type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"
            f"wavelength = {{{wl}}}\n"
        )
    return hdr, side * side


def child(tool: str, hdr: str) -> None:
    if tool == "ours":
        import dask

        from echoes_lab.spectral import pca, read_cube

        t0 = time.perf_counter()  # imports excluded, for both tools
        with dask.config.set(scheduler="threads", num_workers=2):
            out = pca(read_cube(hdr), n_components=8)
        variance = out["explained_variance"].values
    else:
        import spectral.io.envi as envi
        from sklearn.decomposition import PCA

        t0 = time.perf_counter()
        data = envi.open(hdr).load()  # the whole cube in memory, as a user would
        X = np.asarray(data).reshape(-1, data.shape[-1])
        variance = PCA(n_components=8).fit(X).explained_variance_
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "variance0": float(variance[0])}))


def run_capped(tool: str, hdr: Path, cap: int) -> dict:
    import psutil

    proc = subprocess.Popen([sys.executable, __file__, "--child", tool, str(hdr)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched, highest = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            rss = watched.memory_info().rss
        except psutil.NoSuchProcess:
            break
        highest = max(highest, rss)
        if rss > cap:
            proc.kill()
            proc.wait()
            return {
                "ok": False,
                "why": f"killed at {rss / 2**20:.0f} MiB RSS (cap {cap / 2**20:.0f} MiB)",
            }
        time.sleep(0.01)
    out, err = proc.communicate()
    if proc.returncode != 0:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return {"ok": False, "why": f"exit {proc.returncode}: {last}"}
    result = json.loads(out.strip().splitlines()[-1])
    result["ok"] = result["peak_bytes"] <= cap
    result["sampled_peak_bytes"] = highest
    if not result["ok"]:
        result["why"] = (
            f"kernel high-water mark {result['peak_bytes'] / 2**20:.0f} MiB above the cap"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cap-mb", type=int, default=512)
    parser.add_argument("--bands", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "HDR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    cap = args.cap_mb * 2**20
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="echoes-pca-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"memory cap {args.cap_mb} MiB, {args.bands} bands, cubes in {folder}")

    big, big_pixels = write_cube(folder, 2 * cap, args.bands)
    size = big.with_suffix(".img").stat().st_size
    ours_big = run_capped("ours", big, cap)
    print(f"ours, {size / 2**20:.0f} MiB cube ({size / cap:.2f} × cap): {ours_big}")
    if not ours_big["ok"]:
        sys.exit("FAILED: PCA of a cube twice the cap did not finish under the cap")

    largest = None
    for fraction in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2):
        hdr, pixels = write_cube(folder, int(fraction * cap), args.bands)
        result = run_capped("sklearn", hdr, cap)
        mib = hdr.with_suffix(".img").stat().st_size / 2**20
        print(f"scikit-learn, {mib:.0f} MiB cube: {result}")
        if not result["ok"]:
            break
        largest = (hdr, pixels, mib, result)
    if largest is None:
        sys.exit("scikit-learn could not run any cube under the cap")
    hdr, pixels, mib, stock = largest
    ours = run_capped("ours", hdr, cap)
    assert abs(ours["variance0"] - stock["variance0"]) <= 1e-6 * stock["variance0"], (ours, stock)
    ratio = (pixels / ours["seconds"]) / (pixels / stock["seconds"])
    print(f"\ncomparison cube {mib:.0f} MiB ({pixels:,} pixels × {args.bands} bands), "
          f"the largest scikit-learn fits under {args.cap_mb} MiB:")
    print(f"  scikit-learn: {stock['seconds']:.2f} s, {pixels / stock['seconds']:,.0f} px/s, "
          f"peak {stock['peak_bytes'] / 2**20:.0f} MiB")
    print(f"  echoes:       {ours['seconds']:.2f} s, {pixels / ours['seconds']:,.0f} px/s, "
          f"peak {ours['peak_bytes'] / 2**20:.0f} MiB")
    print(f"  throughput ratio echoes / scikit-learn: {ratio:.2f}")
    print(f"  echoes on the {size / 2**20:.0f} MiB cube: {ours_big['seconds']:.2f} s, "
          f"{big_pixels / ours_big['seconds']:,.0f} px/s, "
          f"peak {ours_big['peak_bytes'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

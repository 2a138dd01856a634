"""Batch of parameterised reports: ``echoes_lab.runs.run_grid`` against the papermill CLI.

The same small report notebook (``tests/data/runs/report.ipynb``: opens a demo dataset through
``echoes_lab.open_dataset`` and writes one number) runs N times with ``scale = 1 … N``:

* **stock**: what a user would otherwise type, the papermill CLI
  ``papermill report.ipynb out-i.ipynb -k echoes -p scale i`` (executed notebook only), run
  ``--workers`` at a time, as ``xargs -P`` would: the same parallelism as ours, so the ratio
  compares the runners, not one process against two;
* **echoes**: ``echoes-lab run report.ipynb --grid grid.yaml`` through its Python entry,
  ``run_grid`` with ``--workers`` threads in one process (Papermill and nbconvert imported
  once), each keeping the next run's kernel booting while the current run executes; every run
  still gets a fresh kernel process of its own. It also writes each run's HTML, RO-Crate and
  the batch index. This is the code path of the reports service, which calls the same
  :func:`echoes_lab.runs.run_many` inside the owner's named server.

Both runs happen here, one after the other, on the same demo data; the script checks that both
produced the same number for every ``scale`` and prints the wall times, the load average
before each side and the ratio.

Kernels: each CLI call starts its kernel as a new interpreter; ours forks each run's kernel from
one template process that imported ipykernel, numpy and pandas once
(``echoes_lab.runs.kernels``) — still one fresh process per run, stopped after it.

    .venv/bin/python benchmarks/reports.py [--n 50] [--workers 2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "tests" / "data" / "runs" / "report.ipynb"
BIN = Path(sys.executable).parent


def result_of(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    return re.search(r"RESULT (\S+)", text).group(1)


def papermill_cli(scale: int, out: Path) -> None:
    """One report by the papermill command line, as a user would type it."""
    subprocess.run(
        [str(BIN / "papermill"), str(NOTEBOOK), str(out / f"out-{scale}.ipynb"), "-k", "echoes",
         "-p", "scale", str(float(scale)), "--no-progress-bar", "--log-level", "ERROR"],
        check=True,
        capture_output=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="reports in the batch (default 50)")
    parser.add_argument("--workers", type=int, default=2,
                        help="runs at a time, on both sides (default 2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds, each side once per round, the first side alternating")
    args = parser.parse_args()

    from echoes_lab.runs import run_grid

    work = Path(tempfile.mkdtemp(prefix="echoes-bench-reports-"))
    try:
        data = work / "data"
        subprocess.run(
            [sys.executable, "-m", "echoes_lab.demo", "--out", str(data)],
            check=True,
            capture_output=True,
        )
        os.environ["ECHOES_DATA"] = str(data)  # both runners' kernels inherit it
        scales = list(range(1, args.n + 1))

        ratios = []
        for rnd in range(args.rounds):
            # alternate which side goes first: a load that changes during a round then weighs
            # on each side in turn
            sides = ["stock", "echoes"] if rnd % 2 == 0 else ["echoes", "stock"]
            took, load = {}, {}
            for side in sides:
                folder = work / f"{side}-{rnd}"
                folder.mkdir()
                load[side] = os.getloadavg()[0]
                t0 = time.perf_counter()
                if side == "stock":
                    # the CLI, --workers calls at a time: a thread per running call is
                    # enough, each waits on its papermill process
                    with ThreadPoolExecutor(max_workers=args.workers) as pool:
                        list(pool.map(lambda s, f=folder: papermill_cli(s, f), scales))
                else:
                    table = run_grid(NOTEBOOK, {"scale": scales}, folder,
                                     workers=args.workers)
                took[side] = time.perf_counter() - t0
            assert (table["status"] == "completed").all(), table[table["status"] != "completed"]
            for s, rel in zip(scales, table["notebook"], strict=True):
                a = result_of(work / f"stock-{rnd}" / f"out-{s}.ipynb")
                b = result_of(work / f"echoes-{rnd}" / rel)
                assert a == b, f"scale {s}: papermill CLI says {a}, echoes_lab.runs says {b}"
            stock, ours = took["stock"], took["echoes"]
            ratios.append(stock / ours)
            print(f"round {rnd + 1}: {args.n} reports, same RESULT in both for every scale")
            per = f"({stock / args.n:.2f} s/report)"
            print(f"  papermill CLI, {args.workers} at a time:            {stock:7.1f} s  {per}"
                  f"  (load before: {load['stock']:.1f})")
            per = f"({ours / args.n:.2f} s/report)"
            print(f"  echoes run --grid ({args.workers} workers, + HTML + crate): {ours:7.1f} s"
                  f"  {per}  (load before: {load['echoes']:.1f})")
            print(f"  ratio stock / echoes: {stock / ours:.2f}x")
        if len(ratios) > 1:
            print(f"median ratio over {len(ratios)} rounds: {statistics.median(ratios):.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

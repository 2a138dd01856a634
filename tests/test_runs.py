"""echoes_lab.runs: parameter checks, real Papermill runs on the ECHOES kernel, crates, batches."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from echoes_lab.errors import ParameterError, RunError
from echoes_lab.runs import check_parameters, notebook_parameters, read_grid, run, run_grid
from echoes_lab.runs.provenance import read_crate, validate_crate

# every test here runs notebooks on real kernels (left out of make test-unit)
pytestmark = pytest.mark.slow

RUNS = Path(__file__).parent / "data" / "runs"
REPORT, FAILS = RUNS / "report.ipynb", RUNS / "fails.ipynb"
CLI = [sys.executable, "-m", "echoes_lab.cli", "run"]


@pytest.fixture
def data_env(demo_data, monkeypatch):
    # the kernel inherits ECHOES_DATA, as in a user's lab
    monkeypatch.setenv("ECHOES_DATA", str(demo_data))
    return demo_data


def outputs_of(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )


def test_parameters_are_read_from_the_tagged_cell():
    params = notebook_parameters(REPORT)
    assert {n: p.type for n, p in params.items()} == {
        "dataset": "str",
        "scale": "float",
        "label": "str",
    }
    assert params["dataset"].help == "a catalogued dataset"


def test_unknown_or_mistyped_parameters_are_refused_with_the_accepted_list():
    with pytest.raises(ParameterError) as err:
        check_parameters(REPORT, {"scael": 2})
    message = str(err.value)
    assert "unknown parameter 'scael'" in message
    assert "scale (float)" in message and "label (str)" in message and "dataset (str)" in message
    assert "1.0" not in message  # an error never quotes the notebook's text (its defaults)
    with pytest.raises(ParameterError, match="'scale' must be float, not str"):
        check_parameters(REPORT, {"scale": "two"})
    with pytest.raises(ParameterError, match="'scale' must be float, not bool"):
        check_parameters(REPORT, {"scale": True})
    with pytest.raises(ParameterError, match="'scale' must be float"):
        check_parameters(REPORT, {"scale": "x"}, from_text=True)
    # an int is a fine float; command-line text is converted to the parameter's type
    assert check_parameters(REPORT, {"scale": 2}) == {"scale": 2.0}
    assert check_parameters(REPORT, {"scale": "2.5", "label": "G3"}, from_text=True) == {
        "scale": 2.5,
        "label": "G3",
    }
    with pytest.raises(ParameterError, match="no such notebook"):
        check_parameters(RUNS / "absent.ipynb", {})


def test_a_run_records_notebook_html_and_a_valid_crate(data_env, tmp_path):
    result = run(REPORT, {"scale": 2, "label": "gallery 7"}, tmp_path / "out")
    assert result.status == "completed"
    csv = data_env / "colour" / "fading-spectra.csv"
    # the number the notebook writes, recomputed here from the file itself
    assert f"gallery 7: RESULT {len(pd.read_csv(csv)) * 2.0}" in outputs_of(result.notebook)
    assert result.html.read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "out" / "source" / "report.ipynb").is_file()

    assert validate_crate(tmp_path / "out") == []
    crate = read_crate(tmp_path / "out")
    assert crate["status"] == "completed"
    assert crate["parameters"] == {"scale": 2.0, "label": "gallery 7"}
    sha = hashlib.sha256(csv.read_bytes()).hexdigest()
    assert crate["inputs"] == [
        {"name": "demo-colour", "files": [{"path": csv.resolve().as_uri(), "sha256": sha}]}
    ]
    assert crate["outputs"] == ["report.ipynb", "report.html"]
    assert crate["start"] < crate["end"]
    graph = {e["@id"]: e for e in json.loads(result.crate.read_text())["@graph"]}
    assert graph["#python"]["version"] == platform.python_version()
    assert "#pkg-papermill" in graph and "#pkg-echoes-lab" in graph


def test_a_failing_run_keeps_the_partial_notebook_and_says_failed(data_env, tmp_path):
    with pytest.raises(RunError, match="ZeroDivisionError") as err:
        run(FAILS, {}, tmp_path / "bad")
    assert "partial notebook is kept" in str(err.value)
    nb = nbformat.read(tmp_path / "bad" / "fails.ipynb", as_version=4)
    text = outputs_of(tmp_path / "bad" / "fails.ipynb")
    assert "before the failure" in text and "never reached" not in text
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors[0]["ename"] == "ZeroDivisionError"
    # Papermill marks the failing cell for the reader
    assert any(
        "An Exception was encountered" in c.source for c in nb.cells if c.cell_type == "markdown"
    )
    assert validate_crate(tmp_path / "bad") == []
    crate = read_crate(tmp_path / "bad")
    assert crate["status"] == "failed" and "ZeroDivisionError" in crate["error"]


def test_command_line_run_and_its_errors(data_env, tmp_path):
    ok = subprocess.run(
        [*CLI, str(REPORT), "-p", "scale", "3", "-o", str(tmp_path / "cli")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "RESULT" in outputs_of(tmp_path / "cli" / "report.ipynb")
    assert read_crate(tmp_path / "cli")["parameters"] == {"scale": 3.0}

    bad = subprocess.run(
        [*CLI, str(REPORT), "-p", "scael", "3", "-o", str(tmp_path / "never")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "unknown parameter 'scael'" in bad.stderr
    assert not (tmp_path / "never").exists()  # checked before anything ran


def test_grid_forms():
    assert read_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert read_grid({"runs": [{"a": 1}, {"a": 5}]}) == [{"a": 1}, {"a": 5}]
    with pytest.raises(ParameterError, match="one mapping of parameters per run"):
        read_grid([1, 2])


def test_batch_over_a_grid_writes_an_index(data_env, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("divisor: [0, 4]\n")
    with pytest.raises(ParameterError, match="run 2 of the grid: .*'divisor' must be int"):
        run_grid(FAILS, {"runs": [{"divisor": 1}, {"divisor": "a"}]}, tmp_path / "never")
    done = subprocess.run(
        [*CLI, str(FAILS), "--grid", str(grid), "--workers", "2", "-o", str(tmp_path / "b")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1  # one run failed
    assert "1 of 2 runs completed" in done.stdout
    index = pd.read_csv(tmp_path / "b" / "index.csv")
    assert list(index["status"]) == ["failed", "completed"]
    assert list(index["param:divisor"]) == [0, 4]
    assert (tmp_path / "b" / index["notebook"][0]).is_file()
    page = (tmp_path / "b" / "index.html").read_text()
    assert '<a href="run-001/fails.html">' in page and "2 runs, 1 failed" in page


def test_a_run_that_cannot_start_still_leaves_a_failed_crate(tmp_path):
    with pytest.raises(RunError, match="No such kernel"):
        run(REPORT, {}, tmp_path / "k", kernel="no-such-kernel")
    assert read_crate(tmp_path / "k")["status"] == "failed"
    assert validate_crate(tmp_path / "k") == []


def test_batch_on_a_dask_cluster(data_env, tmp_path):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        table = run_grid(REPORT, {"scale": [1, 3]}, tmp_path / "d", dask=client)
    assert list(table["status"]) == ["completed", "completed"]
    rows = len(pd.read_csv(data_env / "colour" / "fading-spectra.csv"))
    assert [outputs_of(tmp_path / "d" / nb).strip() for nb in table["notebook"]] == [
        f"gallery 3: RESULT {rows * 1.0}",
        f"gallery 3: RESULT {rows * 3.0}",
    ]


LEAK = {
    "cells": [
        {
            "cell_type": "code",
            "id": "p1",
            "metadata": {"tags": ["parameters"]},
            "source": "step = 0",
            "outputs": [],
            "execution_count": None,
        },
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": "import builtins, os, sys\n"
            "seen = [n for n in ('_leak_global',) if n in globals()]\n"
            "seen += ['builtins'] if hasattr(builtins, '_leak_builtin') else []\n"
            "seen += ['module'] if '_leak_module' in sys.modules else []\n"
            "print('STATE', step, os.getpid(), 'leaked:' + ','.join(seen) if seen else 'clean')\n"
            "_leak_global = builtins._leak_builtin = step\n"
            "sys.modules['_leak_module'] = sys.modules['os']",
        },
    ],
    "metadata": {"kernelspec": {"name": "echoes", "display_name": "ECHOES", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.mark.parametrize("workers", [1, 2])
def test_every_run_of_a_batch_gets_a_fresh_interpreter(tmp_path, workers):
    """A run sets a global, a builtin and a module; the next run (even on the same worker,
    whose next kernel was started ahead) sees none of them, in a process of its own."""
    nb = tmp_path / "leak.ipynb"
    nb.write_text(json.dumps(LEAK))
    table = run_grid(nb, {"step": [1, 2, 3, 4]}, tmp_path / "b", workers=workers)
    assert list(table["status"]) == ["completed"] * 4
    lines = [outputs_of(tmp_path / "b" / n).split() for n in table["notebook"]]
    assert [ln[0] for ln in lines] == ["STATE"] * 4
    assert [ln[3] for ln in lines] == ["clean"] * 4
    assert len({ln[2] for ln in lines}) == 4  # four kernels, four pids


WHERE = {
    "cells": [
        {"cell_type": "code", "id": "p1", "metadata": {"tags": ["parameters"]},
         "source": "step = 0", "outputs": [], "execution_count": None},
        {"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import json, os, sys\n"
                   "preloaded = 'pandas' in sys.modules\n"
                   "import helper  # next to the notebook, as in a kernel started in its folder\n"
                   "print('WHERE ' + json.dumps({'ppid': os.getppid(), 'pid': os.getpid(),\n"
                   "    'cwd': os.getcwd(), 'helper': helper.VALUE, 'preloaded': preloaded,\n"
                   "    'record': bool(os.environ.get('ECHOES_RUN_RECORD'))}))"},
    ],
    "metadata": {"kernelspec": {"name": "echoes", "display_name": "ECHOES", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_a_batch_forks_its_kernels_from_one_template_in_the_runs_folder(tmp_path):
    """Kernels of a batch come from one template process (ipykernel and pandas imported once),
    each in the notebook's folder with its own run record; the template and its kernels are
    gone when the batch returns. A single run starts its kernel as usual (our child)."""
    import os

    import psutil

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helper.py").write_text("VALUE = 42\n")
    nb = folder / "where.ipynb"
    nb.write_text(json.dumps(WHERE))
    table = run_grid(nb, {"step": [1, 2, 3]}, tmp_path / "b", workers=2)
    assert list(table["status"]) == ["completed"] * 3
    seen = [json.loads(outputs_of(tmp_path / "b" / n).split("WHERE ", 1)[1])
            for n in table["notebook"]]
    assert len({s["ppid"] for s in seen}) == 1 and seen[0]["ppid"] != os.getpid()
    assert len({s["pid"] for s in seen}) == 3
    assert all(s["cwd"] == str(folder) and s["helper"] == 42 and s["record"] for s in seen)
    assert all(s["preloaded"] for s in seen)
    template = seen[0]["ppid"]
    assert not psutil.pid_exists(template) or psutil.Process(template).ppid() != os.getpid()
    assert not any(psutil.pid_exists(s["pid"]) and psutil.Process(s["pid"]).status()
                   != psutil.STATUS_ZOMBIE for s in seen)
    one = run(nb, {"step": 9}, tmp_path / "one")
    alone = json.loads(outputs_of(one.notebook).split("WHERE ", 1)[1])
    assert alone["ppid"] == os.getpid() and alone["helper"] == 42

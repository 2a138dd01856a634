"""The curated notebooks: stripped in git, self-describing, and they run on the ECHOES kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]

NOTEBOOKS = sorted(
    p for p in (REPO / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
IDS = [str(p.relative_to(REPO / "notebooks")) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stripped_and_self_describing(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: cell {i} has outputs; strip them before committing")
    assert nb.metadata.get("kernelspec", {}).get("name") == "echoes", (
        f"{path.name}: kernel is not echoes")
    first = nb.cells[0]
    assert first.cell_type == "markdown" and len(first.source) > 80, (
        f"{path.name}: must start by saying what it is for and which data it uses")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) <= 1, f"{path.name}: more than one cell tagged 'parameters'"
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith("# Parameters"):
            assert cell in params, f"{path.name}: a parameters cell is not tagged 'parameters'"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_headless_on_echoes_kernel(path, demo_data, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("ECHOES_DATA", str(demo_data))
    # run in a scratch folder, so files a notebook saves (a course's PNG) stay out of the repo;
    # a relative data path in a notebook's parameters is given as seen from the notebook
    params = {name: str((path.parent / p["default"].strip("\"'")).resolve())
              for name, p in papermill.inspect_notebook(str(path)).items() if name.endswith("_csv")}
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters=params, kernel_name="echoes",
                               cwd=str(tmp_path), progress_bar=False, execution_timeout=600)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors

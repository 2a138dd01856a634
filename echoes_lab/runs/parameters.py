"""A notebook's parameters: read from its cell tagged ``parameters`` with Papermill's own
inference, and values checked against them before anything runs."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from echoes_lab.errors import ParameterError

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's ``parameters`` cell."""

    name: str
    type: str  # int, float, str, bool, list, dict or "any"
    default: str  # as written in the cell
    help: str = ""

    def describe(self) -> str:
        return f"{self.name} ({self.type}, default {self.default})"


def notebook_parameters(notebook) -> dict[str, Parameter]:
    """The parameters a notebook accepts, read from its cell tagged ``parameters``.

    ``notebook`` is a path, or a notebook already read (a dict or ``NotebookNode``, e.g. what
    the reports service got from the owner's server): then no file is opened here at all.
    """
    import papermill
    from papermill.inspection import _infer_parameters

    if isinstance(notebook, dict):
        import nbformat

        try:
            # through JSON: multi-line sources become strings, as when read from a file
            nb = nbformat.reads(json.dumps(notebook), as_version=4)
            for cell in nb.cells:  # as papermill's own loader does
                cell.metadata.setdefault("tags", [])
            found = {p.name: p._asdict() for p in _infer_parameters(nb)}
        except Exception:  # never quote the notebook's text back: it may not be the caller's
            msg = "cannot read the notebook's cells (not a Jupyter notebook)"
            raise ParameterError(msg) from None
    else:
        path = Path(notebook)
        if not path.is_file():
            msg = f"{path}: no such notebook"
            raise ParameterError(msg)
        try:
            found = papermill.inspect_notebook(str(path))
        except Exception:  # papermill raises plain exceptions for unreadable notebooks
            msg = f"{path}: cannot read the notebook (not a Jupyter notebook)"
            raise ParameterError(msg) from None
    params = {}
    for name, p in found.items():
        kind = p.get("inferred_type_name") or "None"
        if kind in ("None", "", None):
            try:
                kind = type(ast.literal_eval(p["default"])).__name__
            except (ValueError, SyntaxError):
                kind = "any"
        params[name] = Parameter(
            name, kind if kind in _TYPES else "any", p["default"], p.get("help", "")
        )
    return params


def _accepted(label: str, params: dict[str, Parameter]) -> str:
    # names and types only: an error reply never quotes the notebook's text (defaults)
    if not params:
        return f"{label} has no cell tagged 'parameters', so it accepts none"
    return "accepted parameters: " + "; ".join(f"{p.name} ({p.type})" for p in params.values())


def _from_text(text: str, kind: str):
    """A command-line string as a value of ``kind`` (YAML syntax for lists and dicts)."""
    if kind == "str":
        return text
    if kind == "bool":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError(text)
    if kind in ("int", "float"):
        return _TYPES[kind](text)
    value = yaml.safe_load(text)
    if kind in ("list", "dict") and not isinstance(value, _TYPES[kind]):
        raise ValueError(text)
    return value


def check_parameters(
    notebook, values: dict | None, *, from_text: bool = False, label: str | None = None
) -> dict:
    """Check ``values`` against the notebook's parameters; return them, converted.

    With ``from_text`` the values are strings from the command line, converted to each
    parameter's type. An int is accepted for a float; a bool is not accepted for a number.

    Raises
    ------
    ParameterError
        An unknown name, or a value that is not of the parameter's type; the message lists
        every accepted parameter with its type and default.
    """
    params = notebook_parameters(notebook)
    label = label or (Path(notebook).name if not isinstance(notebook, dict) else "the notebook")
    checked = {}
    for name, value in (values or {}).items():
        if name not in params:
            msg = f"{label}: unknown parameter '{name}'; {_accepted(label, params)}"
            raise ParameterError(msg)
        kind = params[name].type
        try:
            if from_text and isinstance(value, str):
                value = _from_text(value, kind)
            elif kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            ok = kind == "any" or (
                isinstance(value, _TYPES[kind])
                and not (kind in ("int", "float") and isinstance(value, bool))
            )
            if not ok:
                raise ValueError(value)
        except ValueError:
            msg = (
                f"{label}: parameter '{name}' must be {kind}, not {type(value).__name__}; "
                f"{_accepted(label, params)}"
            )
            raise ParameterError(msg) from None
        checked[name] = value
    return checked

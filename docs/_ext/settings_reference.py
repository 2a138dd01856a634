"""The settings reference, generated from the pydantic models of ``echoes_lab.hub.settings``.

The directive ``settings-reference`` writes one table per section of a settings file
(``[hub]``, ``[spawner]``…): each key with its type, default and the description its
``Field`` carries, so the page cannot drift from what ``load_settings`` accepts
(``tests/test_docs.py`` checks that every key is listed).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def _type_name(annotation) -> str:
    """A type as a settings file spells it (``list[str]``, ``"a" | "b"``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value) if value is not None else "(none)"


def sections() -> list[tuple[str, str, list[tuple[str, str, str, str]]]]:
    """``(section, its docstring, [(key, type, default, description)…])`` of every section of
    :class:`echoes_lab.hub.settings.Settings`, top-level keys first under ``""``."""
    from echoes_lab.hub import settings

    top, out = [], []
    for name, field in settings.Settings.model_fields.items():
        if field.exclude:
            continue
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            doc = (model.__doc__ or "").strip() if model.__doc__ != BaseModel.__doc__ else ""
            rows = [(key, _type_name(f.annotation), _default(f), f.description or "")
                    for key, f in model.model_fields.items()]
            out.append((name, " ".join(doc.split()), rows))
        else:
            top.append((name, _type_name(field.annotation), _default(field),
                        field.description or ""))
    return [("", "", top), *out]


def _table(rows) -> nodes.table:
    table = nodes.table(classes=["settings-reference"])
    group = nodes.tgroup(cols=4)
    table += group
    for width in (20, 20, 20, 40):
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for target, cells in ((head, ("key", "type", "default", "what")),
                          *((body, r) for r in rows)):
        row = nodes.row()
        for i, text in enumerate(cells):
            entry = nodes.entry()
            para = nodes.paragraph()
            code = target is body and i < 3 and text  # keys, types, defaults as code
            para += nodes.literal(text=text) if code else nodes.Text(text)
            entry += para
            row += entry
        target += row
    return table


class SettingsReference(Directive):
    """``settings-reference``: every section and key of a settings file, from the schema."""

    def run(self):
        out = []
        for name, doc, rows in sections():
            title = f"[{name}]" if name else "top level"
            section = nodes.section(ids=[f"settings-{name or 'top'}"])
            section += nodes.title(text=title)
            if doc:
                section += nodes.paragraph(text=doc)
            section += _table(rows)
            out.append(section)
        return out


def setup(app):
    app.add_directive("settings-reference", SettingsReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

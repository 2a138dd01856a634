"""Collection metadata from many museum systems in one tidy table, and its ``df.records`` accessor.

The normalised schema, one row per object (:data:`SCHEMA`, in this order):

================= ==========================================================================
``id``            the record's identifier in its source (accession number, OAI identifier …)
``title``         the object's title
``creators``      list of names (makers, artists, authors) as the source writes them, one per person
``actors``        list of ``{"name", "role", "event", "id"}``: each creator's role(s) and the event
                  (LIDO "production", "design" …) it is named in
``date_text``     the date as displayed ("c.1830–41"); parsed by ``df.records.parse_dates()``
``date_earliest`` first year (nullable integer): the source's machine-readable year where it gives
                  one (LIDO ``earliestDate``, EDM ``edm:begin``, IIIF ``navDate``), else the
                  display date's first year as written
``date_latest``   last year, likewise; then ``date_machine_earliest``, ``date_machine_latest``,
                  ``date_machine_source``: the machine-readable years as given, and which
                  field gave them
``object_type``   type or classification ("painting", "print")
``materials``     materials and techniques ("Oil paint on canvas")
``dimensions``    dimensions as written ("support: 610 x 508 mm")
``place``         place of creation, where given
``rights``        rights or credit statement of the record
``titles``        every title with its language: ``{"de": ["Enigma"], "en": ["Enigma machine"]}``
                  (LIDO ``xml:lang``, inherited from ``lido:descriptiveMetadata``; EDM and IIIF
                  language maps; Dublin Core ``xml:lang``); "" for an untagged title (a CSV
                  export's); ``df.records.in_language("fr", "en")`` picks one per record
``descriptions``  the descriptions likewise (LIDO ``descriptiveNoteValue``, EDM
                  ``dc:description``, IIIF ``summary``/``description``, DC ``dc:description``)
``source_system`` where the record came from ("csv:tate", "oai:…", "lido", "iiif", "edm")
``original``      the untouched source record (a dict, or the XML text for LIDO)
================= ==========================================================================

Read with :func:`read` (files and URLs, format guessed from the name or given) or
:func:`harvest_oai`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from echoes_lab.collections import dates, metadata
from echoes_lab.errors import DataError

SCHEMA = ["id", "title", "creators", "actors", "date_text", "date_earliest", "date_latest",
          "date_machine_earliest", "date_machine_latest", "date_machine_source", "object_type",
          "materials", "dimensions", "place", "rights", "titles", "descriptions", "source_system",
          "original"]
TEXT_FIELDS = [
    "id",
    "title",
    "date_text",
    "object_type",
    "materials",
    "dimensions",
    "place",
    "rights",
]


def _frame(records: list[dict], source_system: str) -> pd.DataFrame:
    machine = [r.get("machine_dates") or (None, None, None) for r in records]
    df = pd.DataFrame.from_records(records, columns=[c for c in SCHEMA if c != "source_system"
                                                     and not c.startswith("date_machine")])
    df["source_system"] = source_system
    df["creators"] = df["creators"].map(lambda v: list(v) if isinstance(v, (list, tuple)) else [])
    df["actors"] = [list(a) if isinstance(a, (list, tuple)) else
                    [{"name": c, "role": "", "event": "", "id": None} for c in cs]
                    for a, cs in zip(df["actors"], df["creators"], strict=True)]
    for col in TEXT_FIELDS:
        df[col] = df[col].astype("string")
    # a reader that gives no language map (CSV) still has its title, untagged
    df["titles"] = [t if isinstance(t, dict) else
                    ({"": [str(title)]} if pd.notna(title) and str(title).strip() else {})
                    for t, title in zip(df["titles"], df["title"], strict=True)]
    df["descriptions"] = df["descriptions"].map(lambda d: d if isinstance(d, dict) else {})
    df["date_earliest"] = pd.array([None] * len(df), dtype="Int64")
    df["date_latest"] = pd.array([None] * len(df), dtype="Int64")
    df["date_machine_earliest"] = pd.array([m[0] for m in machine], dtype="Int64")
    df["date_machine_latest"] = pd.array([m[1] for m in machine], dtype="Int64")
    df["date_machine_source"] = pd.array([m[2] for m in machine], dtype="string")
    return df[SCHEMA]


def read(
    source: str | Path | pd.DataFrame,
    format: str | None = None,
    *,
    mapping: dict[str, str] | None = None,
    preset: str | None = None,
    encoding: str = "utf-8",
    parse_dates: bool = True,
) -> pd.DataFrame:
    """Read collection metadata into the normalised schema.

    Parameters
    ----------
    source
        A file (CSV export, LIDO XML, IIIF manifest JSON, Europeana EDM JSON), an OAI-PMH
        base URL (``http…``), or a table in memory (``echoes_lab.open_dataset(...)``).
    format
        ``"csv"``, ``"lido"``, ``"iiif"`` (a manifest or a collection, expanded to its manifests),
        ``"edm"`` (Record API JSON), ``"edm-rdf"`` (EDM RDF/XML), ``"oai"`` (harvest a URL) or
        ``"oai-file"`` (saved OAI-PMH responses: a file or a folder of them); guessed when omitted
        (XML by its root element, JSON by its keys).
    mapping, preset
        For CSV and tables: schema field → column, or the name of a preset in
        :data:`echoes_lab.collections.metadata.PRESETS` (``"tate"``, ``"echoes-demo"``), or
        ``preset="auto"``: the columns recognised from their labels by
        :func:`echoes_lab.collections.metadata.guess_mapping` ("Object Number", "Dated",
        "DateBegin" …; the museum's begin/end years become machine dates). A mapping given
        beside it wins.
    parse_dates
        Fill ``date_earliest``/``date_latest`` (and the other date columns) from ``date_text``.
    """
    if isinstance(source, pd.DataFrame):
        if preset == "auto" and not mapping:  # columns recognised from their labels
            return _frame(metadata.from_frame(source, None), "table:auto").records.parse_dates()
        cols = mapping or metadata.PRESETS.get(preset or "", None)
        if not cols:
            msg = "give a column mapping or a preset to read a table"
            raise DataError(msg)
        return _frame(
            metadata.from_frame(source, cols), f"table:{preset or 'mapped'}"
        ).records.parse_dates()
    text = str(source)
    fmt = format or _guess(text)
    if fmt == "oai":
        df = _frame(metadata.harvest_oai(text), f"oai:{text}")
    else:
        path = Path(source)
        if not path.exists():
            msg = f"{path}: no such file"
            raise DataError(msg)
        if fmt == "oai-file":
            df = _frame(metadata.read_oai_file(path), f"oai-file:{path.name}")
        elif fmt == "edm-rdf":
            df = _frame(metadata.read_edm_rdf(path), "edm-rdf")
        elif fmt == "csv" and preset == "auto" and not mapping:
            # columns recognised from their labels (metadata.guess_mapping)
            df = _frame(metadata.read_csv(path, None, encoding=encoding), f"csv:{path.name}")
        elif fmt == "csv":
            if preset is not None and preset not in metadata.PRESETS:
                msg = (f"unknown preset '{preset}' (known: {', '.join(metadata.PRESETS)}, "
                       "or 'auto' to recognise the columns from their labels)")
                raise DataError(msg)
            cols = mapping or metadata.PRESETS.get(preset or "", None)
            if not cols:
                msg = f"{path}: give a column mapping or a preset for a CSV export"
                raise DataError(msg)
            df = _frame(
                metadata.read_csv(path, cols, encoding=encoding), f"csv:{preset or path.name}"
            )
        elif fmt in ("lido", "iiif", "edm"):
            df = _frame(getattr(metadata, f"read_{fmt}")(path), fmt)
        else:
            msg = f"{path}: unknown format '{fmt}' (csv, lido, iiif, edm, edm-rdf, oai, oai-file)"
            raise DataError(msg)
    return df.records.parse_dates() if parse_dates else df


def harvest_oai(
    url: str, metadata_prefix: str = "oai_dc", set_spec: str | None = None
) -> pd.DataFrame:
    """Dublin Core records of an OAI-PMH endpoint, all pages, in the normalised schema."""
    return _frame(
        metadata.harvest_oai(url, metadata_prefix, set_spec), f"oai:{url}"
    ).records.parse_dates()


def _guess(text: str) -> str:
    lower = text.lower()
    if lower.startswith(("http://", "https://")):
        return "oai"
    path = Path(text)
    if path.is_dir():
        return "oai-file"
    if lower.endswith((".csv", ".tsv", ".csv.gz", ".txt")):
        return "csv"
    if lower.endswith((".xml", ".rdf")):
        ns, root = _root_tag(path)
        # a whole response, or one OAI <record> saved alone (Europeana Metis keeps them so);
        # a <record> of another namespace (MARCXML's, …) is not OAI-PMH
        if root == "OAI-PMH" or (root == "record" and ns == metadata.OAI[1:-1]):
            return "oai-file"
        if root == "RDF":
            return "edm-rdf"
        return "lido"
    if lower.endswith((".json", ".jsonld")):
        doc = metadata._read_json(path)
        if isinstance(doc, list) or (isinstance(doc, dict) and (
                {"object", "proxies", "fullbean", "fullBean"} & set(doc))):
            return "edm"
        return "iiif"
    msg = (
        f"{text}: cannot tell the format from the name; pass format= (csv, lido, iiif, "
        "edm, edm-rdf, oai-file)"
    )
    raise DataError(msg)


def _root_tag(path: Path) -> tuple[str, str]:
    """The namespace and local name of an XML file's root element, from its first 64 KiB only:
    defusedxml's parser stops at the root's start tag (no DTD, entity or external reference is
    followed). Where that start cannot be parsed (a DTD, a broken head), the name as written
    and no namespace: the reader then says what is wrong with the file."""
    import io
    import re
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as safe_et
    from defusedxml import DefusedXmlException

    try:
        with path.open("rb") as f:
            head = f.read(65536)
    except OSError as exc:
        msg = f"{path}: cannot be read ({exc.strerror or exc})"
        raise DataError(msg) from None
    try:
        for _event, el in safe_et.iterparse(io.BytesIO(head), events=("start",),
                                            forbid_dtd=True):
            ns, _, local = el.tag[1:].rpartition("}") if el.tag[:1] == "{" else ("", "", el.tag)
            return ns, local
    except (ParseError, DefusedXmlException, ValueError):
        pass
    m = re.search(r"<(?![?!])(?:[\w.-]+:)?([\w.-]+)", head.decode("utf-8", "replace"))
    return "", m.group(1) if m else ""


def _norm(s: pd.Series) -> pd.Series:
    return (s.astype("string").fillna("").str.lower()
            .str.replace(r"[^\w\s]", " ", regex=True).str.split().str.join(" "))


class RecordsAccessor:
    """Analyses of a normalised collection table: ``df.records.quality()`` and friends."""

    def __init__(self, df: pd.DataFrame):
        missing = [c for c in ("id", "title", "date_text") if c not in df.columns]
        if missing:
            msg = f"df.records needs a normalised collection table; missing {missing}"
            raise AttributeError(msg)
        self._df = df

    def parse_dates(self) -> pd.DataFrame:
        """A copy with ``date_earliest``/``date_latest`` and the date columns of
        :func:`echoes_lab.collections.dates.parse_series` filled from ``date_text``.

        Machine-readable years given by the source (``date_machine_*``) win over the display
        date: they fill ``date_earliest``/``date_latest``, ``date_rule`` says so, and the display
        date's own years stay in ``date_display_earliest``/``date_display_latest`` so a
        disagreement can be reported (``quality()["date_disagreements"]``)."""
        parsed = dates.parse_series(self._df["date_text"])
        out = self._df.copy()
        for col in parsed.columns:
            if col != "date_text":
                out[col] = parsed[col]
        out["date_display_earliest"] = parsed["date_earliest"]
        out["date_display_latest"] = parsed["date_latest"]
        if "date_machine_earliest" in out.columns:
            has = out["date_machine_earliest"].notna() | out["date_machine_latest"].notna()
            if has.any():
                lo = out["date_machine_earliest"].fillna(out["date_machine_latest"])
                hi = out["date_machine_latest"].fillna(out["date_machine_earliest"])
                out.loc[has, "date_earliest"] = lo[has]
                out.loc[has, "date_latest"] = hi[has]
                out.loc[has, "date_earliest_widened"] = lo[has]
                out.loc[has, "date_latest_widened"] = hi[has]
                out["date_rule"] = out["date_rule"].astype("string")
                out.loc[has, "date_rule"] = "machine date: " + out.loc[
                    has, "date_machine_source"
                ].fillna("")
                out.loc[has, "date_parsed"] = True
        return out

    def _dated(self) -> pd.DataFrame:
        return self._df if "date_parsed" in self._df.columns else self.parse_dates()

    def quality(self, vocabularies: dict[str, list[str]] | None = None) -> dict:
        """Completeness per field, date-parse rate, duplicates, vocabulary conformity.

        Returns a dict: ``completeness`` (Series: share of non-empty values per field),
        ``date_parse_rate`` (share of non-empty dates understood), ``exact_duplicates``
        (rows identical in every schema field but the original), ``near_duplicates`` (groups
        of rows sharing a normalised title and creators but not their id), ``unparsed_dates``
        (counts of date strings not understood), ``vocabulary`` (share of values of each given
        field found in its controlled list, case- and space-insensitive).
        """
        df = self._dated()
        fields = [
            c
            for c in SCHEMA
            if c not in ("original", "date_earliest", "date_latest", "actors", "titles",
                         "descriptions")
            and not c.startswith("date_machine")
            and c in df.columns
        ]
        completeness = pd.Series(
            {
                c: float(
                    df[c]
                    .map(
                        lambda v: (
                            bool(v) if isinstance(v, list) else pd.notna(v) and str(v).strip() != ""
                        )
                    )
                    .mean()
                )
                for c in fields
            }
        )
        has_date = df["date_text"].fillna("").str.strip() != ""
        rate = float(df.loc[has_date, "date_parsed"].mean()) if has_date.any() else float("nan")
        key_cols = [c for c in fields if c != "source_system"]
        flat = df[key_cols].assign(
            creators=df["creators"].map(lambda v: "; ".join(v) if isinstance(v, list) else "")
        )
        exact = int(flat.duplicated().sum())
        near_key = _norm(df["title"]) + " | " + _norm(flat["creators"])
        groups = flat.assign(key=near_key)[~flat.duplicated()].groupby("key")["id"].nunique()
        near = groups[(groups > 1) & (groups.index.str.strip(" |") != "")]
        vocab = {}
        for field, allowed in (vocabularies or {}).items():
            ok = {" ".join(str(a).lower().split()) for a in allowed}
            values = df[field].dropna().map(lambda v: " ".join(str(v).lower().split()))
            vocab[field] = float(values.isin(ok).mean()) if len(values) else float("nan")
        return {
            "completeness": completeness,
            "date_parse_rate": rate,
            "exact_duplicates": exact,
            "near_duplicates": near,
            "unparsed_dates": dates.unparsed(df.loc[has_date, "date_text"]),
            "vocabulary": pd.Series(vocab, dtype=float),
            "date_disagreements": self.date_disagreements(),
            "languages": self.languages(),
        }

    def languages(self) -> pd.DataFrame:
        """Records with a title and with a description in each language (rows: language tags,
        "" = untagged; columns ``titles``, ``descriptions``), most titles first."""
        counts = {}
        for column in ("titles", "descriptions"):
            maps = self._df[column] if column in self._df.columns else pd.Series([], dtype=object)
            counts[column] = pd.Series(
                [lang for m in maps if isinstance(m, dict) for lang, texts in m.items() if texts],
                dtype="string").value_counts()
        table = pd.DataFrame(counts).fillna(0).astype(int)
        table.index.name = "language"
        return table.sort_values(["titles", "descriptions"], ascending=False)

    def in_language(self, *preferred: str, fallback: bool = True) -> pd.DataFrame:
        """A copy whose ``title`` and ``description`` are in the first of ``preferred`` languages
        each record has, with ``title_language``/``description_language`` saying which.

        A tag matches its regional forms and back ("en" takes "en-GB", "de-AT" takes "de"). With
        ``fallback`` a record with none of them keeps its untagged value, else its first language
        (as the source lists them), so no record loses its title; without, it gets none.
        ``in_language()`` with no language returns every record's untagged or first title.

        >>> df.records.in_language("fr", "en")   # doctest: +SKIP
        """
        wanted = [metadata.lang_key(p) for p in preferred]

        def pick(mapping) -> tuple[str | None, str | None]:
            mapping = mapping if isinstance(mapping, dict) else {}
            for want in wanted:  # the tag itself first, then its language's other forms
                if mapping.get(want) and want:
                    return mapping[want][0], want
                primary = want.split("-")[0]
                for lang, texts in mapping.items():
                    if texts and primary and lang.split("-")[0] == primary:
                        return texts[0], lang
            if not fallback:
                return None, None
            if mapping.get(""):
                return mapping[""][0], ""
            return next(((texts[0], lang) for lang, texts in mapping.items() if texts),
                        (None, None))

        out = self._df.copy()
        for column, single in (("titles", "title"), ("descriptions", "description")):
            if column not in out.columns:
                continue
            chosen = [pick(m) for m in out[column]]
            out[single] = pd.array([c[0] for c in chosen], dtype="string")
            out[f"{single}_language"] = pd.array([c[1] for c in chosen], dtype="string")
        return out

    def date_disagreements(self) -> pd.DataFrame:
        """Records whose machine-readable years (LIDO ``earliestDate``/``latestDate``, EDM
        ``edm:begin``/``edm:end``, IIIF ``navDate``) differ from the years of their display date
        (both as written), with both: the machine years are used, the display is for a person
        to check."""
        df = self._dated()
        cols = ["id", "date_text", "date_display_earliest", "date_display_latest",
                "date_machine_earliest", "date_machine_latest", "date_machine_source"]
        if "date_machine_earliest" not in df.columns or "date_display_earliest" not in df.columns:
            return pd.DataFrame(columns=cols)
        lo = df["date_machine_earliest"].fillna(df["date_machine_latest"])
        hi = df["date_machine_latest"].fillna(df["date_machine_earliest"])
        both = lo.notna() & df["date_display_earliest"].notna()
        differ = both & (
            (lo != df["date_display_earliest"]) | (hi != df["date_display_latest"])
        ).fillna(False)
        return df.loc[differ, cols].reset_index(drop=True)

    def timeline(self, bin_years: int = 10, ax=None):
        """Objects per period (by the middle of each dated interval): a matplotlib Figure."""
        df = self._dated()
        dated = df.dropna(subset=["date_earliest", "date_latest"])
        mid = ((dated["date_earliest"] + dated["date_latest"]) // 2).astype(int)
        fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 3))
        if len(mid):
            lo, hi = mid.min() // bin_years * bin_years, (mid.max() // bin_years + 1) * bin_years
            ax.hist(
                mid, bins=range(lo, hi + bin_years, bin_years), color="#35618f", edgecolor="white"
            )
        ax.set_xlabel("year (middle of the dated interval)")
        ax.set_ylabel(f"objects per {bin_years} years")
        ax.set_title(f"{len(dated):,} of {len(df):,} records dated")
        fig.tight_layout()
        return fig

    def facets(self, field: str, top: int = 15, ax=None):
        """The most frequent values of ``field`` (lists such as creators are counted per name)."""
        if field not in self._df.columns:
            msg = f"no field '{field}' (fields: {', '.join(self._df.columns)})"
            raise DataError(msg)
        values = self._df[field].explode() if field == "creators" else self._df[field]
        counts = (
            values.dropna()
            .astype(str)
            .str.strip()
            .replace("", pd.NA)
            .dropna()
            .value_counts()
            .head(top)
        )
        fig, ax = (
            (ax.figure, ax)
            if ax is not None
            else plt.subplots(figsize=(6, 0.3 * max(len(counts), 3) + 1))
        )
        ax.barh(counts.index[::-1], counts.to_numpy()[::-1], color="#8f5135")
        ax.set_xlabel("records")
        ax.set_title(f"{field}: top {len(counts)}")
        fig.tight_layout()
        return fig

"""Time-coded annotation formats into one table, and back.

Every reader returns a :class:`pandas.DataFrame` with the columns of :data:`COLUMNS`:

``start``, ``end``
    seconds from the beginning of the recording (float; a point has ``end == start``);
``tier``
    the layer the row belongs to (an ELAN tier, a Praat tier, ``captions``, ``index``…);
``speaker``
    who speaks (WebVTT ``<v>`` voice, ELAN tier ``PARTICIPANT``, IIIF annotation ``label``);
``language``
    a language tag where the file gives one;
``text``
    what is said or noted;
``source``
    what the times refer to: the media named in the file (ELAN ``MEDIA_URL``, OHMS
    ``media_url``, the IIIF canvas) or else the file itself.

Some formats add columns (OHMS: ``synopsis``, ``keywords``, ``line``, ``word``) and facts
about the whole file in ``table.attrs`` (``format``, ``duration``, ``media``,
``vocabularies`` of ELAN controlled vocabularies, ``languages``).

Formats and their references:

* WebVTT (W3C WebVTT, https://www.w3.org/TR/webvtt1/) and SubRip, read with ``webvtt-py``
  after this module has checked every cue timing line (``webvtt-py`` skips a malformed cue
  silently, which would lose words);
* ELAN EAF 2.7-3.0 (https://www.mpi.nl/tools/elan/EAF_Annotation_Format_3.0_and_ELAN.pdf),
  read and written with ``pympi-ling``;
* Praat TextGrid, long and short text formats (https://www.fon.hum.uva.nl/praat/manual/
  TextGrid_file_formats.html), with ``praatio``;
* OHMS XML (Oral History Metadata Synchronizer, Louie B. Nunn Center, University of Kentucky,
  https://www.oralhistoryonline.org/): index points, ``<sync>`` points of legacy transcripts
  and OHMS 6 ``<vtt_transcript>``;
* IIIF Presentation 3 (https://iiif.io/api/presentation/3.0/) manifests whose canvases have a
  ``duration``, with their annotations targeting ``canvas#t=start,end`` (W3C Media Fragments
  URI 1.0 §4.2.1) or a ``SpecificResource`` with a fragment, point or range selector;
  written with ``iiif-prezi3`` (whose pydantic models validate the manifest).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from echoes_lab.errors import DataError, UnsafeXMLError

COLUMNS = ["start", "end", "tier", "speaker", "language", "text", "source"]
MEDIA_FRAGS = "http://www.w3.org/TR/media-frags/"
OHMS_NS = "https://www.weareavp.com/nunncenter/ohms"
IIIF3_CONTEXT = "http://iiif.io/api/presentation/3/context.json"


def _table(rows: list[dict], fmt: str, **attrs) -> pd.DataFrame:
    extra = [k for r in rows for k in r if k not in COLUMNS]
    df = pd.DataFrame(rows, columns=COLUMNS + list(dict.fromkeys(extra)))
    df["start"] = df["start"].astype(float)
    df["end"] = df["end"].astype(float)
    df = df.sort_values(["start", "end"], kind="stable").reset_index(drop=True)
    df.attrs = {"format": fmt, **attrs}
    return df


# -- W3C Media Fragments, temporal dimension, Normal Play Time ------------------------------------

# Media Fragments URI 1.0 §4.2.1 (https://www.w3.org/TR/media-frags/#naming-time):
#   npt-sec = 1*DIGIT [ "." *DIGIT ];  npt-mmss = npt-mm ":" npt-ss [ "." *DIGIT ]
#   npt-hhmmss = npt-hh ":" npt-mm ":" npt-ss [ "." *DIGIT ];  npt-mm, npt-ss = 2DIGIT (00-59)
_NPT = r"(?:\d+(?:\.\d*)?|(?:\d+:)?[0-5]\d:[0-5]\d(?:\.\d*)?)"
_TEMPORAL = re.compile(rf"(?:t|%74)=(?:npt:)?(?:(?P<s>{_NPT})(?:,(?P<e>{_NPT}))?|,(?P<e2>{_NPT}))")


def _npt_seconds(value: str) -> float:
    parts = value.split(":")
    seconds = float(parts[-1])
    for i, p in enumerate(reversed(parts[:-1]), start=1):
        seconds += int(p) * 60**i
    return seconds


def parse_fragment(fragment: str) -> tuple[float, float | None]:
    """Start and end (seconds; ``None`` for an open end) of a temporal media fragment.

    Accepts ``t=`` with Normal Play Time as W3C Media Fragments URI 1.0 §4.2.1 defines it
    (``t=10,20``, ``t=npt:10.5,``, ``t=,20`` from 0, ``t=0:02:00,121.5``), alone or after the
    ``#`` of an IRI. SMPTE and wall-clock times are refused: they need a frame rate or a date.

    Raises
    ------
    DataError
        The fragment is not a temporal fragment of that grammar, or its start is not before
        its end (§4.2.1: "the begin time must be smaller than the end time").
    """
    frag = fragment.split("#", 1)[1] if "#" in fragment else fragment
    for part in frag.split("&"):
        if not part.startswith(("t=", "%74=")):
            continue
        m = _TEMPORAL.fullmatch(part)
        if not m:
            msg = (f"media fragment {part!r}: not a W3C Media Fragments temporal fragment "
                   "(t=START,END in seconds or h:mm:ss, e.g. t=723,761 or t=0:12:03,0:12:41)")
            raise DataError(msg)
        start = _npt_seconds(m["s"]) if m["s"] else 0.0
        end_text = m["e"] or m["e2"]
        end = _npt_seconds(end_text) if end_text else None
        if end is not None and not start < end:
            msg = f"media fragment {part!r}: the start ({start}) must be before the end ({end})"
            raise DataError(msg)
        return start, end
    msg = f"{fragment!r} has no temporal media fragment (t=START,END)"
    raise DataError(msg)


def fragment(start: float, end: float) -> str:
    """``t=START,END`` in seconds (Media Fragments NPT), millisecond precision."""
    return f"t={_seconds_text(start)},{_seconds_text(end)}"


def _seconds_text(value: float) -> str:
    text = f"{round(float(value), 3):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _read_text(path: Path) -> str:
    """A text file's content: UTF-8 (as WebVTT requires), or UTF-16 with its byte order mark
    (Windows tools export captions so); anything else is refused, naming the byte."""
    raw = path.read_bytes()
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        msg = (f"{path}: byte {exc.start} is not {encoding.split('-sig')[0].upper()} text; "
               "save the file as UTF-8")
        raise DataError(msg) from None


# -- WebVTT and SubRip -----------------------------------------------------------------------------

# WebVTT §4.1 timestamps: (hh:)mm:ss.ttt; SubRip writes hh:mm:ss,ttt
_STAMP = r"(?:\d{2,}:)?[0-5]\d:[0-5]\d[.,]\d{3}"
_TIMING = re.compile(rf"[ \t]*(?P<s>{_STAMP})[ \t]+-->[ \t]+(?P<e>{_STAMP})(?:[ \t].*)?")


def _check_timings(path: Path, text: str, kind: str, first_line: int = 1) -> None:
    """Refuse the first malformed cue timing line, naming it (webvtt-py would drop the cue)."""
    for n, line in enumerate(text.splitlines(), start=first_line):
        if "-->" not in line:
            continue
        m = _TIMING.fullmatch(line)
        if not m:
            msg = (f"{path}, line {n}: cue timing {line.strip()!r} is not "
                   f"'HH:MM:SS.mmm --> HH:MM:SS.mmm' ({kind})")
            raise DataError(msg)
        start, end = (_npt_seconds(m[g].replace(",", ".")) for g in ("s", "e"))
        if end < start:
            msg = f"{path}, line {n}: the cue ends ({m['e']}) before it starts ({m['s']})"
            raise DataError(msg)


def _stamp_seconds(ts) -> float:
    return ts.hours * 3600 + ts.minutes * 60 + ts.seconds + ts.milliseconds / 1000


def _captions(captions, source: str, language: str | None, tier: str) -> list[dict]:
    return [{"start": _stamp_seconds(c.start_time), "end": _stamp_seconds(c.end_time),
             "tier": tier, "speaker": c.voice, "language": language,
             "text": " ".join(c.text.split()), "source": source} for c in captions]


def _vtt_header(text: str) -> dict[str, str]:
    """``Key: value`` lines after the ``WEBVTT`` line (``Kind``, ``Language``, as YouTube and
    many archives write them) up to the first blank line."""
    out = {}
    for line in text.splitlines()[1:]:
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and "-->" not in line:
            out[key.strip().lower()] = value.strip()
    return out


def read_vtt(path, text: str | None = None, source: str | None = None,
             first_line: int = 1) -> pd.DataFrame:
    """Read a WebVTT file (or ``text``, found at line ``first_line`` of ``path``): one row per
    cue, ``speaker`` from ``<v Name>``."""
    import io

    import webvtt
    from webvtt.errors import MalformedFileError

    path = Path(path)
    text = _read_text(path) if text is None else text
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        msg = f"{path}, line 1: a WebVTT file starts with 'WEBVTT' (found {text[:20]!r})"
        raise DataError(msg)
    _check_timings(path, text, "WebVTT §4.1", first_line)
    try:
        vtt = webvtt.from_buffer(io.StringIO(text))
    except MalformedFileError as exc:
        msg = f"{path}: not a readable WebVTT file: {exc}"
        raise DataError(msg) from None
    head = _vtt_header(text)
    return _table(_captions(vtt.captions, source or str(path), head.get("language"),
                            head.get("kind", "captions")), "webvtt")


def read_srt(path) -> pd.DataFrame:
    """Read a SubRip (.srt) file: one row per numbered subtitle."""
    import io

    import webvtt
    from webvtt.errors import MalformedFileError

    path = Path(path)
    text = _read_text(path)
    _check_timings(path, text, "SubRip")
    try:
        srt = webvtt.from_buffer(io.StringIO(text), format="srt")
    except MalformedFileError as exc:
        msg = f"{path}: not a readable SubRip file: {exc}"
        raise DataError(msg) from None
    return _table(_captions(srt.captions, str(path), None, "captions"), "srt")


def write_vtt(table: pd.DataFrame, path) -> Path:
    """Write ``table`` as WebVTT: a cue per row, ``<v speaker>`` where there is a speaker, the
    language in a ``Language:`` header when the table has one language."""
    import webvtt

    path = Path(path)
    vtt = webvtt.WebVTT()
    for row in _check_table(table).itertuples():
        voice = f"<v {row.speaker}>" if _given(row.speaker) else ""
        vtt.captions.append(webvtt.Caption(_vtt_stamp(row.start), _vtt_stamp(row.end),
                                           voice + str(row.text)))
    body = vtt.content
    langs = {x for x in table["language"] if _given(x)}
    if len(langs) == 1:
        body = body.replace("WEBVTT", f"WEBVTT\nLanguage: {langs.pop()}", 1)
    path.write_text(body, encoding="utf-8")
    return path


def _vtt_stamp(seconds: float) -> str:
    ms = round(float(seconds) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _given(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) \
        and str(value) != ""


def _check_table(table: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("start", "end", "text") if c not in table]
    if missing:
        msg = f"the table has no column {', '.join(missing)} (a time-coded table has {COLUMNS})"
        raise DataError(msg)
    bad = table[~(table["end"] >= table["start"])]
    if len(bad):
        row = bad.iloc[0]
        msg = (f"row {bad.index[0]}: end {row['end']} is before start {row['start']} "
               f"({str(row['text'])[:40]!r})")
        raise DataError(msg)
    return table


# -- XML -------------------------------------------------------------------------------------------

def _xml(path: Path, data: bytes | None = None):
    """Parse XML with lxml, keeping line numbers; refuse DTDs and entities (no expansion, no
    network), as ``defusedxml`` does for the other readers."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        tree = etree.fromstring(path.read_bytes() if data is None else data, parser).getroottree()
    except etree.XMLSyntaxError as exc:
        msg = f"{path}: not well-formed XML at line {exc.lineno}: {exc.msg}"
        raise DataError(msg) from None
    if tree.docinfo.doctype:
        msg = (f"{path}: refused for safety: the file declares a DTD ({tree.docinfo.doctype}); "
               "export it without one")
        raise UnsafeXMLError(msg)
    return tree.getroot()


# -- ELAN EAF --------------------------------------------------------------------------------------

def read_eaf(path) -> pd.DataFrame:
    """Read an ELAN EAF file: a row per annotation of every tier.

    Time-aligned tiers give their own times; symbolic tiers (``Symbolic_Subdivision``,
    ``Symbolic_Association``) give their parent annotation's times, as ELAN shows them.
    ``speaker`` is the tier's ``PARTICIPANT``; ``language`` its ``LANG_REF`` (EAF 3.0) or
    ``DEFAULT_LOCALE``. Controlled vocabularies are in ``table.attrs["vocabularies"]``
    (``{cv_id: {value: description}}``, in the vocabulary's first language).
    """
    import warnings

    import pympi

    path = Path(path)
    root = _xml(path)
    slots = {s.get("TIME_SLOT_ID") for s in root.iter("TIME_SLOT")}
    for ann in root.iter("ALIGNABLE_ANNOTATION"):
        for ref in ("TIME_SLOT_REF1", "TIME_SLOT_REF2"):
            if ann.get(ref) not in slots:
                msg = (f"{path}, line {ann.sourceline}: annotation {ann.get('ANNOTATION_ID')} "
                       f"has {ref}={ann.get(ref)!r}, which TIME_ORDER does not define")
                raise DataError(msg)
    ids = {a.get("ANNOTATION_ID") for a in root.iter("ALIGNABLE_ANNOTATION", "REF_ANNOTATION")}
    for ann in root.iter("REF_ANNOTATION"):
        if ann.get("ANNOTATION_REF") not in ids:
            msg = (f"{path}, line {ann.sourceline}: annotation {ann.get('ANNOTATION_ID')} has "
                   f"ANNOTATION_REF={ann.get('ANNOTATION_REF')!r}, which no annotation has as id")
            raise DataError(msg)
    try:
        with warnings.catch_warnings():  # EAF 2.x: "unknown version"; checked here instead
            warnings.simplefilter("ignore", UserWarning)
            eaf = pympi.Eaf(str(path))
    except Exception as exc:  # pympi raises bare KeyError/ValueError on inconsistent files
        msg = f"{path}: not a readable ELAN file ({type(exc).__name__}: {exc})"
        raise DataError(msg) from None
    media = next((m.get("MEDIA_URL") for m in eaf.media_descriptors if m.get("MEDIA_URL")),
                 str(path))
    # times of the time-aligned annotations, tier by tier (unaligned slots spread); a reference
    # annotation takes the times of the aligned annotation at the end of its chain (pympi's own
    # lookup fails when that one is on a subdivision tier, as in ELAN's example file)
    times: dict[str, tuple[float, float, bool]] = {}
    for aligned, *_ in eaf.tiers.values():
        spans = _spread([(eaf.timeslots[a[0]], eaf.timeslots[a[1]]) for a in aligned.values()])
        times.update(zip(aligned, spans, strict=True))

    def resolve(ann_id: str, depth: int = 0) -> tuple[float, float, bool]:
        if ann_id in times:
            return times[ann_id]
        if depth > len(eaf.annotations):
            msg = f"{path}: annotation {ann_id} refers to itself through ANNOTATION_REF"
            raise DataError(msg)
        return resolve(eaf.tiers[eaf.annotations[ann_id]][1][ann_id][0], depth + 1)

    rows = []
    for tier, (aligned, refs, attrs, _) in eaf.tiers.items():
        language = attrs.get("LANG_REF") or attrs.get("DEFAULT_LOCALE")
        texts = [(i, a[2]) for i, a in aligned.items()] + [(i, r[1]) for i, r in refs.items()]
        for ann_id, text in texts:
            start, end, on_time = resolve(ann_id)
            rows.append({"start": start / 1000, "end": end / 1000, "tier": tier,
                         "speaker": attrs.get("PARTICIPANT") or None, "language": language,
                         "text": text, "source": media, "aligned": on_time})
    vocabularies = {}
    for cv_id, (_descriptions, entries, _ext) in eaf.controlled_vocabularies.items():
        vocab = {}
        for values, _ext_ref in entries.values():
            if values:
                value, _lang, description = values[0]
                vocab[value] = description
        vocabularies[cv_id] = vocab
    languages = {k: v[1] for k, v in eaf.languages.items()}
    return _table(rows, "eaf", media=media, vocabularies=vocabularies, languages=languages)


def _spread(times: list[tuple]) -> list[tuple[float, float, bool]]:
    """Times of a tier's annotations in document order, unaligned time slots (no
    ``TIME_VALUE``) filled as ELAN shows them: a run of annotations between two aligned
    boundaries divides that interval evenly. ``aligned`` is False for the filled ones."""
    out: list[tuple[float, float, bool]] = []
    i = 0
    while i < len(times):
        start, end = times[i]
        if start is not None and end is not None:
            out.append((float(start), float(end), True))
            i += 1
            continue
        j = i
        while j < len(times) and times[j][1] is None:
            j += 1
        b0 = start if start is not None else (out[-1][1] if out else math.nan)
        b1 = times[j][1] if j < len(times) else math.nan
        n = min(j, len(times) - 1) - i + 1
        step = (b1 - b0) / n
        out += [(b0 + k * step, b0 + (k + 1) * step, False) for k in range(n)]
        i += n
    return out


def write_eaf(table: pd.DataFrame, path, media: str | None = None,
              vocabularies: dict | None = None) -> Path:
    """Write ``table`` as ELAN EAF 3.0: a tier per ``tier`` (and speaker, ELAN keeping one
    ``PARTICIPANT`` per tier), ``LANG_REF`` from ``language``, times in milliseconds, and the
    controlled vocabularies (``{cv_id: {value: description}}``; default: the table's
    ``attrs["vocabularies"]``, as :func:`read_eaf` gives them)."""
    import pympi

    path = Path(path)
    table = _check_table(table)
    eaf = pympi.Eaf(author="ECHOES Lab")
    eaf.remove_tier("default")
    if media:
        eaf.add_linked_file(media, mimetype=_mimetype(media))
    tiers = table.assign(tier=table["tier"].where(table["tier"].map(_given), "transcript"),
                         speaker=table["speaker"].where(table["speaker"].map(_given), ""))
    multi = tiers.groupby("tier")["speaker"].nunique()
    for (tier, speaker), rows in tiers.groupby(["tier", "speaker"], sort=False):
        tier_id = f"{tier} - {speaker}" if multi[tier] > 1 else tier
        langs = [x for x in rows["language"] if _given(x)]
        language = langs[0] if langs else None
        if language and language not in eaf.languages:
            eaf.add_language(language)
        eaf.add_tier(tier_id, part=speaker or None, language=language)
        for row in rows.itertuples():
            start, end = round(row.start * 1000), round(row.end * 1000)
            if end <= start:  # ELAN has no zero-length annotations: a point gets 1 ms
                end = start + 1
            eaf.add_annotation(tier_id, start, end, str(row.text))
    vocabularies = table.attrs.get("vocabularies") if vocabularies is None else vocabularies
    for cv_id, entries in (vocabularies or {}).items():
        if "und" not in eaf.languages:  # a CV entry names its language; the table has none
            eaf.add_language("und")
        eaf.add_controlled_vocabulary(cv_id)
        for n, (value, description) in enumerate(entries.items(), start=1):
            eaf.add_cv_entry(cv_id, f"cveid{n}", [(value, "und", description)])
    pympi.Elan.to_eaf(str(path), eaf, pretty=True)
    return path


def _mimetype(media: str) -> str:
    import mimetypes

    return mimetypes.guess_type(media)[0] or "application/octet-stream"


# -- Praat TextGrid --------------------------------------------------------------------------------

_TG_FIELD = re.compile(r"\s*(xmin|xmax|number)\s*=\s*(\S*)\s*")


def _check_textgrid(path: Path, text: str) -> None:
    """Name the line of the first time that is not a number, or of an interval ending before it
    starts, in the long text format (praatio's errors name neither)."""
    last_xmin = None
    for n, line in enumerate(text.splitlines(), start=1):
        m = _TG_FIELD.fullmatch(line)
        if not m:
            continue
        try:
            value = float(m[2])
        except ValueError:
            msg = f"{path}, line {n}: {m[1]} = {m[2]!r} is not a time in seconds"
            raise DataError(msg) from None
        if m[1] == "xmin":
            last_xmin = value
        elif m[1] == "xmax" and last_xmin is not None and value < last_xmin:
            msg = f"{path}, line {n}: xmax = {value} is before the xmin above it ({last_xmin})"
            raise DataError(msg)


def read_textgrid(path) -> pd.DataFrame:
    """Read a Praat TextGrid (long or short text format): interval tiers give a row per
    non-empty interval, point tiers a row per point (``end == start``)."""
    from praatio import textgrid
    from praatio.utilities.errors import PraatioException

    path = Path(path)
    _check_textgrid(path, _read_text(path))
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except (PraatioException, ValueError, IndexError) as exc:
        msg = f"{path}: not a readable Praat TextGrid ({type(exc).__name__}: {exc})"
        raise DataError(msg) from None
    rows = []
    for name in tg.tierNames:
        tier = tg.getTier(name)
        for entry in tier.entries:
            start, end = (entry[0], entry[1]) if len(entry) == 3 else (entry[0], entry[0])
            rows.append({"start": start, "end": end, "tier": name, "speaker": None,
                         "language": None, "text": entry[-1], "source": str(path)})
    return _table(rows, "textgrid", duration=tg.maxTimestamp - tg.minTimestamp)


# -- OHMS ------------------------------------------------------------------------------------------

def _hms(text: str | None) -> float | None:
    if not text or not text.strip():
        return None
    try:
        return _npt_seconds(text.strip())
    except ValueError:
        return None


def read_ohms(path, data: bytes | None = None) -> pd.DataFrame:
    """Read an OHMS XML record: index points, legacy ``<sync>`` points, OHMS 6 VTT transcript.

    * ``index``: a row per ``<point>``; ``start`` its ``<time>`` (seconds), ``end`` the next
      point's (the last one ends at the record's ``<duration>``); ``text`` its ``<title>``,
      with ``synopsis``, ``keywords`` (the ``;``-separated list) and ``partial_transcript``.
    * ``sync``: the ``<sync>`` element ``I:|L(W)|L(W)…`` says that after each ``I`` minutes the
      transcript has reached line ``L``, word ``W``; a point row per entry (``start = k·I·60``)
      with ``line`` and ``word`` as given.
    * ``transcript``: the cues of ``<vtt_transcript>`` (OHMS 6), speakers from ``<v>``.
    """
    path = Path(path)
    root = _xml(path, data)
    ns = {"o": OHMS_NS}
    record = root.find("o:record", ns)
    if record is None:
        msg = f"{path}, line {root.sourceline}: not an OHMS record (no <record> in {OHMS_NS})"
        raise DataError(msg)

    def text_of(el, name):
        child = el.find(f"o:{name}", ns)
        return (child.text or "").strip() if child is not None and child.text else ""

    media = text_of(record, "media_url") or str(path)
    language = text_of(record, "language") or None
    duration = _hms(text_of(record, "duration")) or None
    rows = []
    points = record.findall("o:index/o:point", ns)
    starts = []
    for p in points:
        t = text_of(p, "time")
        try:
            starts.append(float(t))
        except ValueError:
            msg = f"{path}, line {p.sourceline}: index point <time> {t!r} is not seconds"
            raise DataError(msg) from None
    for i, p in enumerate(points):
        end = starts[i + 1] if i + 1 < len(points) else (duration or starts[i])
        keywords = [k.strip() for k in text_of(p, "keywords").split(";") if k.strip()]
        rows.append({"start": starts[i], "end": end, "tier": "index", "speaker": None,
                     "language": language, "text": text_of(p, "title"), "source": media,
                     "synopsis": text_of(p, "synopsis"), "keywords": keywords,
                     "partial_transcript": text_of(p, "partial_transcript")})
    sync_el = record.find("o:sync", ns)
    sync = (sync_el.text or "").strip() if sync_el is not None else ""
    if sync:
        interval, sep, stamps = sync.partition(":")
        if not sep or not interval.strip().isdigit():
            msg = (f"{path}, line {sync_el.sourceline}: <sync> {sync[:30]!r} does not start "
                   "with the interval in minutes ('1:|13(3)|…')")
            raise DataError(msg)
        step = int(interval) * 60
        for k, stamp in enumerate(stamps.split("|")):
            if not stamp.strip():
                continue
            m = re.fullmatch(r"(\d+)\((\d+)\)", stamp.strip())
            if not m:
                msg = (f"{path}, line {sync_el.sourceline}: <sync> entry {k} {stamp!r} is not "
                       "LINE(WORD)")
                raise DataError(msg)
            rows.append({"start": k * step, "end": k * step, "tier": "sync", "speaker": None,
                         "language": language, "text": f"line {m[1]}, word {m[2]}",
                         "source": media, "line": int(m[1]), "word": int(m[2])})
    vtt_el = record.find("o:vtt_transcript", ns)
    # OHMS separates paragraphs of a cue with <br>; webvtt-py drops tags, gluing the words
    vtt = (vtt_el.text or "").strip().replace("<br>", " ") if vtt_el is not None else ""
    if vtt:
        # OHMS writes the last cue's end as 00:00:00.000, "until the end": the record's
        # duration, or the cue's own start when the record gives none
        last = list(_TIMING.finditer(vtt))
        if last and _npt_seconds(last[-1]["e"].replace(",", ".")) == 0:
            m = last[-1]
            start = _npt_seconds(m["s"].replace(",", "."))
            vtt = vtt[:m.start("e")] + _vtt_stamp(duration or start) + vtt[m.end("e"):]
        first = vtt_el.sourceline + len(vtt_el.text.split("WEBVTT", 1)[0].splitlines()) - 1
        cues = read_vtt(path, text=vtt, source=media, first_line=first)
        cues["tier"] = "transcript"
        cues["language"] = language
        rows += cues.to_dict("records")
    return _table(rows, "ohms", media=media, duration=duration,
                  title=text_of(record, "title"), interviewee=text_of(record, "interviewee"),
                  interviewer=text_of(record, "interviewer"))


# -- IIIF Presentation 3 AV manifests --------------------------------------------------------------

def _lang_text(value) -> str | None:
    if isinstance(value, dict):
        for texts in value.values():
            return " ".join(texts) if isinstance(texts, list) else str(texts)
    return value if isinstance(value, str) else None


def _lang_of(value) -> str | None:
    if isinstance(value, dict) and value:
        lang = next(iter(value))
        return None if lang == "none" else lang
    return None


def _canvas_times(ident: str, where: str) -> tuple[str, float, float | None]:
    """The canvas and the times of ``canvas#t=start,end`` (:func:`parse_fragment`); a bad
    fragment is an error naming ``where``."""
    canvas, frag = ident.split("#", 1)
    try:
        start, end = parse_fragment(frag)
    except DataError as exc:
        msg = f"{where}: {exc}"
        raise DataError(msg) from None
    return canvas, start, end


def _ranges(ranges, canvases: dict, where: str) -> list[dict]:
    """Rows of the table of contents: each Range's label on the canvas times it lists
    (``canvas#t=start,end``; an open end runs to the canvas's duration), nested ranges too."""
    rows = []
    for i, r in enumerate(ranges or []):
        if not isinstance(r, dict) or r.get("type") != "Range":
            continue
        here = f"{where}[{i}]"
        for item in r.get("items", []):
            ident = item.get("id", "") if isinstance(item, dict) else str(item)
            kind = item.get("type") if isinstance(item, dict) else "Canvas"
            if kind != "Canvas" or "#" not in ident:
                continue
            canvas, start, end = _canvas_times(ident, f"{here} ({r.get('id')})")
            if end is None:
                end = canvases.get(canvas) or start
            rows.append({"start": start, "end": float(end), "tier": "structures",
                         "speaker": None, "language": _lang_of(r.get("label")),
                         "text": _lang_text(r.get("label")) or "", "source": canvas})
        rows += _ranges([x for x in r.get("items", []) if isinstance(x, dict)], canvases,
                        f"{here}.items")
    return rows


def _target_times(target, where: str) -> tuple[str, float, float] | None:
    """(canvas, start, end) of an annotation target, or None for a whole-canvas target."""
    if isinstance(target, list):
        target = target[0] if target else None
    if isinstance(target, str):
        if "#" not in target:
            return None
        canvas, start, end = _canvas_times(target, f"{where}: target")
        return canvas, start, end if end is not None else start
    if isinstance(target, dict):
        source = target.get("source")
        canvas = source.get("id") if isinstance(source, dict) else source
        sel = target.get("selector")
        sel = sel[0] if isinstance(sel, list) and sel else sel
        if not isinstance(sel, dict):
            return None if canvas is None else _target_times(canvas, where)
        kind = sel.get("type")
        if kind == "FragmentSelector":
            start, end = parse_fragment(sel.get("value", ""))
            return canvas, start, end if end is not None else start
        if kind == "PointSelector" and "t" in sel:
            return canvas, float(sel["t"]), float(sel["t"])
        if kind == "RangeSelector":
            return (canvas, float(sel["startSelector"]["t"]),
                    float(sel["endSelector"]["t"]))
    return None


def _bodies(body) -> list[dict]:
    bodies = body if isinstance(body, list) else [body] if body else []
    return [b for b in bodies if isinstance(b, dict)]


def read_iiif(path) -> pd.DataFrame:
    """Read the time-coded annotations of a IIIF Presentation 3 manifest.

    A row per annotation with a ``TextualBody`` whose target is a time range (or point) of a
    canvas; ``tier`` is its annotation page's ``label`` or else its ``motivation``;
    ``speaker`` the annotation's ``label``; ``source`` the canvas. The table of contents
    (``structures``: Ranges listing ``canvas#t=…``) gives rows of tier ``structures``, the
    range's label as text in its language. ``table.attrs`` holds
    ``duration`` (of the first canvas), ``canvases`` (``{canvas: duration}``), ``media`` (the
    painted audio/video, first choice) and ``captions`` (WebVTT files the manifest links).
    """
    path = Path(path)
    try:
        doc = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        msg = f"{path}, line {exc.lineno}: not JSON: {exc.msg}"
        raise DataError(msg) from None
    context = doc.get("@context") if isinstance(doc, dict) else None
    kind = doc.get("type") if isinstance(doc, dict) else None
    contexts = context if isinstance(context, list) else [context]
    if IIIF3_CONTEXT not in contexts or kind != "Manifest":
        msg = (f"{path}: field @context/type: not a IIIF Presentation 3 Manifest "
               f"(@context {context!r}, type {kind!r})")
        raise DataError(msg)
    rows, canvases, media, captions = [], {}, [], []
    for ci, canvas in enumerate(doc.get("items", [])):
        cid = canvas.get("id")
        canvases[cid] = canvas.get("duration")
        pages = [("items", i, p) for i, p in enumerate(canvas.get("items", []))]
        pages += [("annotations", i, p) for i, p in enumerate(canvas.get("annotations", []))]
        for kind, pi, page in pages:
            tier = _lang_text(page.get("label"))
            for ai, ann in enumerate(page.get("items", [])):
                where = f"{path}: items[{ci}].{kind}[{pi}].items[{ai}]"
                motivation = ann.get("motivation")
                motivation = motivation[0] if isinstance(motivation, list) else motivation
                for b in _bodies(ann.get("body")):
                    if b.get("type") == "Choice":
                        b = (b.get("items") or [{}])[0]
                    if motivation == "painting" and b.get("type") in ("Sound", "Audio", "Video"):
                        media.append(b.get("id"))
                    elif b.get("format") == "text/vtt":
                        captions.append({"id": b.get("id"), "language": b.get("language"),
                                         "label": _lang_text(b.get("label"))})
                    elif b.get("type") == "TextualBody":
                        times = _target_times(ann.get("target"), where)
                        if times is None:
                            continue
                        rows.append({"start": times[1], "end": times[2],
                                     "tier": tier or motivation,
                                     "speaker": _lang_text(ann.get("label")),
                                     "language": b.get("language"), "text": b.get("value", ""),
                                     "source": times[0] or cid})
    rows += _ranges(doc.get("structures"), canvases, f"{path}: structures")
    first = next(iter(canvases.values()), None)
    return _table(rows, "iiif", duration=first, canvases=canvases,
                  media=media[0] if media else None, captions=captions,
                  label=_lang_text(doc.get("label")), manifest=doc.get("id"))


def write_manifest(table: pd.DataFrame, path, *, media: str, duration: float,
                   manifest_id: str, label: str = "Recording", kind: str = "Sound",
                   motivation: str = "supplementing", language: str | None = None) -> Path:
    """Write a IIIF Presentation 3 manifest: one canvas of ``duration`` seconds painted with
    ``media`` (``kind`` ``Sound`` or ``Video``), and the rows of ``table`` as annotations on
    ``canvas#t=start,end`` in an annotation page per tier (its ``label`` the tier name).

    Built and validated with ``iiif-prezi3`` (pydantic models of the Presentation 3 schema):
    an invalid IRI, a negative duration or a wrong type raises before anything is written.
    """
    from iiif_prezi3 import Annotation, AnnotationPage, Manifest
    from pydantic import ValidationError

    path = Path(path)
    table = _check_table(table)
    late = table[table["end"] > duration + 1e-3]
    if len(late):
        msg = (f"row {late.index[0]}: ends at {late['end'].iloc[0]} s, after the end of the "
               f"recording ({duration} s)")
        raise DataError(msg)
    base = manifest_id.rsplit("/", 1)[0] if manifest_id.endswith(".json") else manifest_id
    canvas_id = f"{base}/canvas/1"
    try:
        manifest = Manifest(id=manifest_id, label={language or "none": [label]})
        canvas = manifest.make_canvas(id=canvas_id, duration=float(duration))
        canvas.add_item(AnnotationPage(id=f"{canvas_id}/page/1", items=[Annotation(
            id=f"{canvas_id}/page/1/painting", motivation="painting", target=canvas_id,
            body={"id": media, "type": kind, "format": _mimetype(media),
                  "duration": float(duration)})]))
        pages = []
        tiers = table["tier"].where(table["tier"].map(_given), "transcript")
        for pi, (tier, rows) in enumerate(table.groupby(tiers, sort=False), start=1):
            items = []
            for ai, row in enumerate(rows.itertuples(), start=1):
                body = {"type": "TextualBody", "value": str(row.text), "format": "text/plain"}
                if _given(getattr(row, "language", None)):
                    body["language"] = row.language
                extra = ({"label": {"none": [str(row.speaker)]}}
                         if _given(getattr(row, "speaker", None)) else {})
                items.append(Annotation(
                    id=f"{canvas_id}/annotations/{pi}/{ai}", motivation=motivation,
                    target=f"{canvas_id}#{fragment(row.start, row.end)}", body=body, **extra))
            pages.append(AnnotationPage(id=f"{canvas_id}/annotations/{pi}",
                                        label={"none": [str(tier)]}, items=items))
        canvas.annotations = pages
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = (f"the IIIF manifest would be invalid: field {'.'.join(map(str, err['loc']))}: "
               f"{err['msg']}")
        raise DataError(msg) from None
    path.write_text(manifest.json(indent=2), encoding="utf-8")
    return path


# -- one entry point -------------------------------------------------------------------------------

_READERS = {".vtt": read_vtt, ".srt": read_srt, ".eaf": read_eaf, ".textgrid": read_textgrid,
            ".json": read_iiif, ".xml": read_ohms}


def read_timed(path, format: str | None = None) -> pd.DataFrame:  # noqa: A002 (the user's word)
    """Read a time-coded file into the table of :data:`COLUMNS` (``start``/``end`` in seconds).

    Parameters
    ----------
    path
        A WebVTT (``.vtt``), SubRip (``.srt``), ELAN (``.eaf``), Praat (``.TextGrid``),
        OHMS (``.xml``) or IIIF Presentation 3 manifest (``.json``) file.
    format
        One of ``vtt``, ``srt``, ``eaf``, ``textgrid``, ``ohms``, ``iiif`` when the file's
        extension does not say.

    Raises
    ------
    DataError
        The file is malformed; the message names the file, the line or field, and the fix.
    """
    path = Path(path)
    if format:
        key = {"ohms": ".xml", "iiif": ".json"}.get(format.lower(), "." + format.lower())
    else:
        key = path.suffix.lower()
    reader = _READERS.get(key)
    if reader is None:
        msg = (f"{path}: unknown time-coded format {key!r}; give format= one of vtt, srt, eaf, "
               "textgrid, ohms, iiif")
        raise DataError(msg)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise DataError(msg)
    return reader(path)


def search(tables, query: str) -> pd.DataFrame:
    """Rows of one or several tables whose text contains ``query`` (case-insensitive), with a
    ``transcript`` column naming the table (its key in a dict, else its ``source``)."""
    items = tables.items() if isinstance(tables, dict) else (
        (None, t) for t in ([tables] if isinstance(tables, pd.DataFrame) else tables))
    found = []
    for name, t in items:
        hit = t[t["text"].astype(str).str.contains(query, case=False, regex=False)]
        found.append(hit.assign(transcript=name if name is not None else hit["source"]))
    if not found:
        return pd.DataFrame(columns=[*COLUMNS, "transcript"])
    return pd.concat(found, ignore_index=True)

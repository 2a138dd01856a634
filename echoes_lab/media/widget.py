"""Listen with the transcript in sync, and annotate time ranges into the commons.

:func:`player` shows a recording in the browser's own ``<audio>``/``<video>`` element beside
its transcript: the line being spoken is highlighted, clicking a line seeks the player there,
a search box keeps the lines that contain the words. Under it a form records what a time range
is about (a theme, a place, a person, a practice) as an annotation of the commons on
``t=start,end`` of the recording. The player is an ``anywidget`` (https://anywidget.dev/): its
few lines of JavaScript run in JupyterLab and in Voilà apps alike, and it keeps the playing
time (``current_time``) and the clicked line (``clicked``) in Python.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

import anywidget
import traitlets

from echoes_lab.errors import DataError, EchoesError

#: a recording embedded in the page (base64) up to this size; larger ones need a URL (src=)
EMBED_LIMIT = 50 * 1024 * 1024
CATEGORIES = ["theme", "place", "person", "practice"]

_ESM = r"""
function clock(s) {
  const m = Math.floor(s / 60), r = s - 60 * m;
  return `${m}:${r.toFixed(1).padStart(4, "0")}`;
}
function render({ model, el }) {
  const media = document.createElement(model.get("kind") === "video" ? "video" : "audio");
  media.controls = true;
  media.preload = "auto";
  media.src = model.get("src");
  media.className = "echoes-player-media";
  const search = document.createElement("input");
  search.type = "search";
  search.placeholder = "Search the transcript";
  search.className = "echoes-player-search";
  const list = document.createElement("ol");
  list.className = "echoes-transcript";
  let last = 0;
  function seek(t) {
    // before the metadata a seek is dropped: do it once the media knows its duration
    if (media.readyState >= 1) media.currentTime = t;
    else media.addEventListener("loadedmetadata", () => { media.currentTime = t; }, { once: true });
  }
  function highlight() {
    const t = media.currentTime, cues = model.get("cues");
    for (const li of list.children) {
      const c = cues[+li.dataset.index];
      li.classList.toggle("echoes-current", t >= c.start && t < c.end);
    }
  }
  function draw() {
    list.replaceChildren();
    const q = search.value.trim().toLowerCase();
    model.get("cues").forEach((c, i) => {
      const li = document.createElement("li");
      li.className = "echoes-cue";
      li.dataset.index = i;
      li.dataset.start = c.start;
      li.title = `${clock(c.start)} – ${clock(c.end)}`;
      const time = document.createElement("span");
      time.className = "echoes-cue-time";
      time.textContent = clock(c.start);
      li.append(time);
      if (c.speaker) {
        const who = document.createElement("b");
        who.className = "echoes-cue-speaker";
        who.textContent = c.speaker;
        li.append(who);
      }
      const text = document.createElement("span");
      text.className = "echoes-cue-text";
      text.textContent = c.text;
      li.append(text);
      if (q) {
        const hit = c.text.toLowerCase().includes(q);
        li.hidden = !hit;
        li.classList.toggle("echoes-match", hit);
      }
      li.addEventListener("click", () => {
        seek(c.start);
        model.set("clicked", i);
        model.set("current_time", c.start);
        model.save_changes();
      });
      list.append(li);
    });
    highlight();
  }
  function report() {
    highlight();
    const now = Date.now();
    if (now - last > 250) {
      last = now;
      model.set("current_time", media.currentTime);
      model.save_changes();
    }
  }
  media.addEventListener("timeupdate", report);
  media.addEventListener("seeked", () => { last = 0; report(); });
  model.on("change:seek_to", () => { if (model.get("seek_to") >= 0) seek(model.get("seek_to")); });
  model.on("change:cues", draw);
  search.addEventListener("input", draw);
  el.classList.add("echoes-player");
  el.append(media, search, list);
  draw();
}
export default { render };
"""

_CSS = """
.echoes-player { display: flex; flex-direction: column; gap: .4em; max-width: 56em; }
.echoes-player-media { width: 100%; }
.echoes-player-search { padding: .3em .5em; }
.echoes-transcript { max-height: 22em; overflow-y: auto; margin: 0; padding-left: 0;
                     list-style: none; }
.echoes-cue { padding: .2em .4em; cursor: pointer; border-radius: .2em; }
.echoes-cue:hover { background: #eef3f7; }
.echoes-cue-time { color: #6c757d; font-variant-numeric: tabular-nums; margin-right: .6em; }
.echoes-cue-speaker { margin-right: .4em; }
.echoes-current { background: #ffe9a8; }
.echoes-match .echoes-cue-text { text-decoration: underline; }
"""


class Player(anywidget.AnyWidget):
    """The synced player: ``cues`` (start, end, speaker, text), ``current_time`` and the last
    ``clicked`` line come back from the browser; setting ``seek_to`` moves the player."""

    _esm = _ESM
    _css = _CSS
    src = traitlets.Unicode("").tag(sync=True)
    kind = traitlets.Unicode("audio").tag(sync=True)
    cues = traitlets.List(traitlets.Dict()).tag(sync=True)
    current_time = traitlets.Float(0.0).tag(sync=True)
    clicked = traitlets.Int(-1).tag(sync=True)
    seek_to = traitlets.Float(-1.0).tag(sync=True)


def _source(recording: Path) -> str:
    if recording.stat().st_size > EMBED_LIMIT:
        msg = (f"{recording}: {recording.stat().st_size >> 20} MB is too large to embed in the "
               "page; give src= the address the recording is served at")
        raise DataError(msg)
    kind = mimetypes.guess_type(recording.name)[0] or "application/octet-stream"
    return f"data:{kind};base64," + base64.b64encode(recording.read_bytes()).decode()


def player(table, recording, media: str | None = None, src: str | None = None,
           visibility: str = "private"):
    """A player of ``recording`` with the transcript ``table`` in sync, and a form to annotate
    a time range of it into the commons.

    Parameters
    ----------
    table
        A time-coded table (:func:`echoes_lab.read_timed`, :func:`echoes_lab.media.transcribe`).
    recording
        The audio or video file (embedded in the page up to :data:`EMBED_LIMIT`).
    media
        The IRI the annotations target (the published recording); default: the file's URI.
    src
        The address the browser plays from instead of embedding the file.
    visibility
        Default visibility of the annotations.

    Returns
    -------
    ipywidgets.VBox
        The player (``.children[0]``, a :class:`Player`) and the form; clicking a line also
        puts its times in the form.
    """
    import ipywidgets as w

    from echoes_lab import commons
    from echoes_lab.media.speech import target

    recording = Path(recording)
    if not recording.is_file():
        msg = f"{recording}: no such recording"
        raise DataError(msg)
    kind = "video" if (mimetypes.guess_type(recording.name)[0] or "").startswith("video") \
        else "audio"
    media = media or recording.resolve().as_uri()
    cues = [{"start": float(r.start), "end": float(r.end), "text": str(r.text),
             "speaker": str(r.speaker) if isinstance(r.speaker, str) else ""}
            for r in table.itertuples()]
    play = Player(src=src or _source(recording), kind=kind, cues=cues)
    start = w.BoundedFloatText(description="from (s)", min=0, max=1e7, step=0.1,
                               layout=w.Layout(width="12em"))
    end = w.BoundedFloatText(description="to (s)", min=0, max=1e7, step=0.1,
                             layout=w.Layout(width="12em"))
    mark_start = w.Button(description="from = now", tooltip="the player's current time")
    mark_end = w.Button(description="to = now", tooltip="the player's current time")
    category = w.Dropdown(options=CATEGORIES, value="theme", description="about")
    text = w.Text(description="note", placeholder="e.g. basket weaving, taught by her mother",
                  layout=w.Layout(width="32em"))
    text.add_class("echoes-annotation-text")
    vis = w.Dropdown(options=["private", "public"], value=visibility, description="visibility")
    button = w.Button(description="Annotate this range", button_style="primary")
    button.add_class("echoes-annotate")
    status = w.HTML()
    status.add_class("echoes-annotation-status")

    def on_click(change):
        i = change["new"]
        if 0 <= i < len(cues):
            start.value, end.value = cues[i]["start"], cues[i]["end"]

    def annotate(_):
        try:
            if not end.value > start.value:
                msg = f"the range {start.value}–{end.value} s is empty: 'to' must be after 'from'"
                raise DataError(msg)
            a = commons.annotate(target(media, start.value, end.value), text.value,
                                 motivation="describing", visibility=vis.value,
                                 tags=[category.value])
            status.value = (f"recorded <code>{a['id']}</code> on "
                            f"<code>t={start.value:g},{end.value:g}</code>")
        except EchoesError as exc:
            status.value = f"<b>not recorded</b>: {exc}"

    play.observe(on_click, "clicked")
    mark_start.on_click(lambda _: setattr(start, "value", round(play.current_time, 2)))
    mark_end.on_click(lambda _: setattr(end, "value", round(play.current_time, 2)))
    button.on_click(annotate)
    return w.VBox([play, w.HBox([start, mark_start, end, mark_end]),
                   w.HBox([category, vis]), text, w.HBox([button, status])])

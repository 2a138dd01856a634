// The commons viewer (viewer.py): a IIIF manifest in OpenSeadragon + Annotorious, the commons'
// annotations of each canvas beside it. Reads and writes go to the commons' own protocol
// endpoints with the page's OAuth cookie and _xsrf token.
(() => {
  "use strict";
  const cfg = JSON.parse(document.getElementById("viewer-config").textContent);
  const $ = (id) => document.getElementById(id);
  const status = (text) => { $("viewer-status").textContent = text; };
  // the script's words in the page's language (the catalogue's, as the page's own), {name} filled
  const T = cfg.words;
  const fill = (key, values) => T[key].replace(/\{(\w+)\}/g, (m, k) => values[k]);
  const MEDIA = "application/ld+json";
  let canvases = [];
  let current = null;       // the canvas shown: {id, label, width, height, image, service}
  let imageSize = null;     // the opened image's pixel size (Annotorious works in it)
  let annotations = [];     // the commons' annotations on the current canvas
  let replies = new Map();  // annotation IRI -> its replies and assessments
  let pending = null;       // the region just drawn, waiting for its comment

  const label = (l) => {
    if (!l) return "";
    if (typeof l === "string") return l;
    if (Array.isArray(l)) return l.map(label).join(" ");
    if (l["@value"]) return l["@value"];
    const values = Object.values(l)[0];
    return Array.isArray(values) ? values.join(" ") : String(values || "");
  };
  const idOf = (x) => (x && typeof x === "object" ? x.id || x["@id"] : x);
  const first = (x) => (Array.isArray(x) ? x[0] : x);

  // IIIF Presentation 3 (items) and 2 (sequences/canvases/images) canvases, with their image
  function readManifest(m) {
    const out = [];
    if (Array.isArray(m.items)) {
      for (const c of m.items) {
        const body = first(first(first(c.items || [])?.items || [])?.body);
        out.push({ id: c.id, label: label(c.label), width: c.width, height: c.height,
                   image: idOf(body), service: first(body?.service) });
      }
    } else {
      for (const c of first(m.sequences || [])?.canvases || []) {
        const res = first(c.images || [])?.resource;
        out.push({ id: c["@id"], label: label(c.label), width: c.width, height: c.height,
                   image: idOf(res), service: first(res?.service) });
      }
    }
    return out;
  }

  // -- coordinates: the commons keeps canvas coordinates, Annotorious works in image pixels --
  const scale = (sx, sy, sel) => {
    if (sel.type === "FragmentSelector") {
      const [x, y, w, h] = sel.value.replace(/^xywh=(pixel:)?/, "").split(",").map(Number);
      const v = [x * sx, y * sy, w * sx, h * sy].map((n) => Math.round(n * 100) / 100);
      // Annotorious tells a rectangle by conformsTo, which other clients may leave out
      return { ...sel, conformsTo: "http://www.w3.org/TR/media-frags/",
               value: `xywh=pixel:${v.join(",")}` };
    }
    if (sel.type === "SvgSelector") {
      const value = sel.value.replace(/points=(["'])([^"']*)\1/, (_, q, pts) => {
        const moved = pts.trim().split(/\s+/).map((p) => {
          const [x, y] = p.split(",").map(Number);
          return `${Math.round(x * sx * 100) / 100},${Math.round(y * sy * 100) / 100}`;
        });
        return `points=${q}${moved.join(" ")}${q}`;
      });
      return { ...sel, value };
    }
    return sel;
  };
  const factors = () => [(current.width || imageSize.x) / imageSize.x,
                         (current.height || imageSize.y) / imageSize.y];
  const toCanvas = (sel) => { const [fx, fy] = factors(); return scale(fx, fy, sel); };
  const toImage = (sel) => { const [fx, fy] = factors(); return scale(1 / fx, 1 / fy, sel); };

  // -- the commons' protocol ------------------------------------------------------------------
  // a script's GET with the sign-in cookie counts as signed in only with the _xsrf token
  // (JupyterHub's rule for non-navigation requests); without it the commons answers as to an
  // anonymous reader: public annotations only. Sent to this origin only.
  const get = (url) => fetch(url, { credentials: "same-origin", headers: {
    Accept: MEDIA,
    ...(new URL(url, window.location).origin === window.location.origin
      ? { "X-XSRFToken": cfg.xsrf } : {}) } });
  async function fetchAll(query) {
    const items = [];
    let resp = await get(`${cfg.base}search?${new URLSearchParams(query)}`);
    if (!resp.ok) throw new Error(fill("answered_search", { status: resp.status }));
    const coll = await resp.json();
    let page = coll.first;
    while (page) {
      if (typeof page === "string") {
        resp = await get(page);
        if (!resp.ok) throw new Error(fill("answered_page", { status: resp.status, page }));
        page = await resp.json();
      }
      items.push(...(page.items || []));
      page = page.next;
    }
    return items;
  }

  async function post(model) {
    const resp = await fetch(`${cfg.base}annotations/`, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(model),
      headers: { "Content-Type": MEDIA, Accept: MEDIA, "X-XSRFToken": cfg.xsrf } });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.message || fill("answered", { status: resp.status }));
    return body;
  }

  const selectorOf = (a) => {
    for (const t of [].concat(a.target || [])) {
      if (typeof t === "object" && t.selector) return first(t.selector);
      if (typeof t === "string" && t.includes("#xywh=")) {
        return { type: "FragmentSelector", conformsTo: "http://www.w3.org/TR/media-frags/",
                 value: t.slice(t.indexOf("#") + 1) };
      }
    }
    return null;
  };
  const bodies = (a) => [].concat(a.body || []);
  const text = (a) => bodies(a).filter((b) => b.purpose !== "tagging")
    .map((b) => b.value || "").join(" ");
  const tags = (a) => bodies(a).filter((b) => b.purpose === "tagging").map((b) => b.value);
  const isSoftware = (a) => Boolean(a.generator);

  async function loadAnnotations() {
    annotations = (await fetchAll({ canvas: current.id }))
      .filter((a) => !["replying", "assessing"].includes(first(a.motivation)));
    replies = new Map();
    await Promise.all(annotations.map(async (a) => {
      replies.set(a.id, await fetchAll({ target: a.id }));
    }));
    redraw();
  }

  // -- what is drawn and listed ---------------------------------------------------------------
  function shown() {
    const q = $("filter-text").value.trim().toLowerCase();
    const kind = $("filter-kind").value;
    const minConf = parseFloat($("filter-confidence").value);
    return annotations.filter((a) => {
      if (kind === "person" && isSoftware(a)) return false;
      if (kind === "software" && !isSoftware(a)) return false;
      if (!Number.isNaN(minConf) && (a.confidence ?? 1) < minConf) return false;
      return !q || `${text(a)} ${tags(a).join(" ")}`.toLowerCase().includes(q);
    });
  }

  function redraw() {
    const list = shown();
    if (anno && imageSize) {
      anno.setAnnotations(list.filter(selectorOf).map((a) => ({
        "@context": "http://www.w3.org/ns/anno.jsonld", id: a.id, type: "Annotation",
        body: bodies(a).map((b) => ({ ...b, purpose: b.purpose || "commenting" })),
        target: { source: current.image, selector: toImage(selectorOf(a)) } })));
    }
    $("anno-count").textContent = String(list.length);
    $("anno-list").replaceChildren(...list.map(card));
  }

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  };

  function card(a) {
    const who = a.creator?.nickname || a.creator?.name || T.someone;
    const sw = isSoftware(a);
    const kids = replies.get(a.id) || [];
    const verdicts = (v) => kids.filter((r) => tags(r).includes(v)).length;
    const agent = sw
      ? el("span", { class: "badge text-bg-info agent-software" },
           fill("software", { name: `${a.generator.name || ""} ${a.generator.version || ""}`.trim() }))
      : el("span", { class: "badge text-bg-success agent-person" }, T.person);
    const rights = cfg.licences[a.rights] || a.rights || "";
    const item = el("li", { class: "card card-body mb-2 p-2 annotation", "data-id": a.id },
      el("div", { class: "small" }, agent, " ", el("strong", {}, who),
         typeof a.confidence === "number"
           ? el("span", { class: "ms-1 confidence" }, fill("confidence", { value: a.confidence.toFixed(2) }))
           : null,
         el("span", { class: "ms-1 text-body-secondary" }, `${a.visibility || ""} · ${rights}`)),
      el("div", { class: "anno-text" }, text(a)),
      tags(a).length ? el("div", { class: "small" }, fill("tags", { tags: tags(a).join(", ") })) : null,
      el("div", { class: "small text-body-secondary" },
         fill("verdicts", { where: selectorOf(a)?.type || T.whole_canvas,
                            agree: verdicts("agree"), disagree: verdicts("disagree") })),
      el("ol", { class: "list-unstyled ms-3 small replies" },
         ...kids.filter((r) => first(r.motivation) === "replying").map((r) =>
           el("li", { class: "reply" }, el("strong", {}, r.creator?.nickname || ""), ": ",
              text(r)))));
    const input = el("input", { class: "form-control form-control-sm reply-text",
                                placeholder: T.reply, "aria-label": T.reply });
    const button = (cls, name, fn) => {
      const b = el("button", { type: "button", class: `btn btn-sm ${cls}` }, name);
      b.addEventListener("click", () => fn().catch((e) => status(e.message)));
      return b;
    };
    const answer = async (motivation, value, verdict) => {
      const body = [{ type: "TextualBody", value, purpose: motivation }];
      if (verdict) body.push({ type: "TextualBody", value: verdict, purpose: "tagging" });
      await post({ type: "Annotation", motivation, body, target: a.id,
                   visibility: a.visibility === "private" ? "private" : a.visibility });
      replies.set(a.id, await fetchAll({ target: a.id }));
      redraw();
    };
    item.append(el("div", { class: "input-group input-group-sm mt-1" }, input,
      button("btn-outline-primary reply-send", T.reply, async () => {
        if (!input.value.trim()) throw new Error(T.reply_first);
        await answer("replying", input.value.trim());
        status(T.reply_saved);
      }),
      button("btn-outline-success agree", T.agree, () => answer("assessing", "I agree", "agree")),
      button("btn-outline-danger disagree", T.disagree,
             () => answer("assessing", "I disagree", "disagree"))));
    if (cfg.moderator) item.append(moderation(a, button));
    item.addEventListener("mouseenter", () => anno?.selectAnnotation(a.id));
    return item;
  }

  // -- moderation (hub admins, group moderators): hide with a reason, show again -------------
  // the card of an annotation hidden here stays listed (the commons no longer lists it) so that
  // it can be shown again; the service decides whether it is this moderator's to hide
  const hiddenHere = new Map();  // annotation IRI -> {by, reason}
  async function moderate(a, method, reason) {
    const url = `${cfg.base}annotations/${a.id.split("/").pop()}/hidden`;
    const resp = await fetch(url, {
      method, credentials: "same-origin", body: JSON.stringify({ reason }),
      headers: { "Content-Type": "application/json", "X-XSRFToken": cfg.xsrf } });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body.message || fill("answered", { status: resp.status }));
    }
  }
  function moderation(a, button) {
    const reason = el("input", { class: "form-control form-control-sm moderation-reason",
                                 placeholder: T.moderation_reason,
                                 "aria-label": T.moderation_reason });
    const why = () => {
      if (!reason.value.trim()) throw new Error(T.reason_first);
      return reason.value.trim();
    };
    const hidden = hiddenHere.get(a.id);
    const box = el("div", { class: "input-group input-group-sm mt-1 moderation" }, reason);
    if (hidden) {
      box.append(button("btn-outline-secondary show-again", T.show_again, async () => {
        await moderate(a, "DELETE", why());
        hiddenHere.delete(a.id);
        redraw();
        status(T.was_shown);
      }));
    } else {
      box.append(button("btn-outline-warning hide", T.hide, async () => {
        const text = why();
        await moderate(a, "PUT", text);
        hiddenHere.set(a.id, { name: cfg.user, reason: text });
        redraw();
        status(T.was_hidden);
      }));
    }
    const wrap = el("div", {});
    if (hidden) {
      wrap.append(el("div", { class: "alert alert-warning p-1 mt-1 mb-0 small moderation-hidden" },
                     fill("hidden_by", hidden)));
    }
    wrap.append(box);
    return wrap;
  }

  // -- the image and the drawing layer --------------------------------------------------------
  const osd = OpenSeadragon({ id: "osd", prefixUrl: `${cfg.base}viewer/lib/images/`,
                              showNavigationControl: true, crossOriginPolicy: false });
  const anno = OpenSeadragon.Annotorious(osd, { disableEditor: true, allowEmpty: true });
  anno.setDrawingTool("rect");
  osd.addHandler("open", () => {
    const item = osd.world.getItemAt(0);
    imageSize = item.getContentSize();
    $("image-error").hidden = true;
    status(`${current.label || current.id}: ${imageSize.x} × ${imageSize.y} px`);
    redraw();
  });
  osd.addHandler("open-failed", (e) => {
    imageSize = null;
    const err = $("image-error");
    err.textContent = fill("image_failed", {
      image: current.service ? idOf(current.service) : current.image,
      reason: e.message || T.no_answer });
    err.hidden = false;
  });
  for (const tool of ["rect", "polygon"]) {
    $(`tool-${tool}`).addEventListener("click", () => {
      anno.setDrawingTool(tool);
      anno.setDrawingEnabled(true);
      status(tool === "rect" ? T.draw_rectangle : T.draw_polygon);
    });
  }
  anno.on("createSelection", (selection) => {
    pending = selection;
    $("new-annotation").hidden = false;
    $("new-text").focus();
  });
  $("new-cancel").addEventListener("click", () => {
    anno.cancelSelected();
    pending = null;
    $("new-annotation").hidden = true;
  });
  $("new-annotation").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!pending) return;
    const selector = toCanvas(first(pending.target.selector));
    const source = { id: current.id, type: "Canvas" };
    if (cfg.manifest) source.partOf = [{ id: cfg.manifest, type: "Manifest" }];
    try {
      await post({ type: "Annotation", motivation: "commenting",
                   body: { type: "TextualBody", value: $("new-text").value, format: "text/plain",
                           purpose: "commenting" },
                   target: { type: "SpecificResource", source, selector },
                   visibility: $("new-visibility").value, rights: $("new-licence").value });
      anno.cancelSelected();
      pending = null;
      $("new-text").value = "";
      $("new-annotation").hidden = true;
      status(T.saved);
      await loadAnnotations();
    } catch (e) {
      status(fill("not_saved", { reason: e.message }));
    }
  });
  for (const id of ["filter-text", "filter-kind", "filter-confidence"]) {
    $(id).addEventListener("input", redraw);
  }

  function show(canvas) {
    current = canvas;
    imageSize = null;
    const url = new URL(window.location);
    url.searchParams.set("canvas", canvas.id);
    window.history.replaceState(null, "", url);
    const service = idOf(canvas.service);
    const profile = JSON.stringify(canvas.service?.profile || "");
    // a IIIF Image API service of level 1 or 2 gives tiles; level 0 or none: the plain image
    if (service && !/level0/.test(profile)) {
      osd.open(`${service.replace(/\/$/, "")}/info.json`);
    } else {
      osd.open({ type: "image", url: canvas.image });
    }
    loadAnnotations().catch((e) => status(e.message));
  }

  async function start() {
    if (!cfg.manifest) { status(T.give_manifest); return; }
    let manifest;
    try {
      const resp = await fetch(cfg.manifest, { headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(fill("server_answered", { status: resp.status }));
      manifest = await resp.json();
    } catch (e) {
      status(fill("manifest_unread", { manifest: cfg.manifest, reason: e.message }));
      return;
    }
    canvases = readManifest(manifest);
    if (!canvases.length) { status(fill("no_canvases", { manifest: cfg.manifest })); return; }
    $("canvas-select").replaceChildren(...canvases.map((c, i) =>
      el("option", { value: String(i) }, c.label || c.id)));
    const wanted = Math.max(0, canvases.findIndex((c) => c.id === cfg.canvas));
    $("canvas-select").value = String(wanted);
    $("canvas-select").addEventListener("change", (e) => show(canvases[Number(e.target.value)]));
    document.title = fill("title", { label: label(manifest.label) });
    show(canvases[wanted]);
  }
  start();
})();

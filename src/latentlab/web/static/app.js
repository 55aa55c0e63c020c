// latentlab explorer: sliders over a trained autoencoder's latent. Plain JavaScript, no build step.
//
// The server keeps no per-user state: the page holds the original latent (zOrig) and the edited
// one (z) and asks /api/decode for the PNG of z whenever z changes. While a slider is dragged,
// at most one decode request is in flight; changes made meanwhile are coalesced (one per
// animation frame) and the latest value wins.
"use strict";

const $ = (id) => document.getElementById(id);
const TOP_ELEMENTS = 16; // sliders shown at first for a latent larger than this
const THUMB_PX = 62; // width of one thumbnail in the strip, with its border and gap
const DIFF_GAIN = 4; // the difference map shows |edited - reconstruction| times this
const DESCRIBE_EVERY_MS = 1000; // during a long drag, measure the change at most this often

const state = {
  info: null,
  index: 0, // dataset index of the current image, null for an upload
  zOrig: null, // latent of the current image
  z: null, // the edited latent
  shown: [], // latent elements that have a slider
  rank: new Map(), // element -> {rank, effect, kl}
  maxEffect: 1,
  decode: { inFlight: false, dirty: false, scheduled: false },
  editedUrl: null,
  editedBlob: null,
  reconPixels: null,
  describeTimer: null,
  describeSeq: 0,
  lastDescribe: 0,
  interp: null, // {from, to} latents while interpolating
};

// ---------------------------------------------------------------------------------- helpers

async function api(path, options) {
  const res = await fetch(path, options);
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      detail = typeof body.detail === "string" ? body.detail
        : (body.detail || []).map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ") || detail;
    } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return res;
}

function postJSON(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(2) : v.toFixed(3);
}

function setStatus(message, isError = false) {
  const el = $("status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

// ---------------------------------------------------------------------------------- startup

async function init() {
  const info = await (await api("/api/info")).json();
  state.info = info;
  $("model-info").textContent =
    `${info.run} · ${info.model} · data ${info.data} (${info.n_images} images)`;
  $("model-note").textContent = info.note || "";  // e.g. a VQ-VAE: the sliders move the code before quantisation
  $("model-note").hidden = !info.note;
  $("n-images").textContent = `of ${info.n_images}`;
  for (const id of ["index", "interp-index"]) $(id).max = info.n_images - 1;
  $("add-element").max = info.latent_dim - 1;
  $("add-element").closest(".add-element").hidden = info.latent_dim <= TOP_ELEMENTS; // small latents: every slider shown
  info.ranking.forEach((s, r) => state.rank.set(s.element, { rank: r, effect: s.effect, kl: s.kl }));
  state.maxEffect = Math.max(1e-12, ...info.ranking.map((s) => s.effect || 0));
  const ranked = info.ranking.map((s) => s.element);
  const all = [...Array(info.latent_dim).keys()];
  state.shown = info.latent_dim <= TOP_ELEMENTS ? all : (ranked.length ? ranked : all).slice(0, TOP_ELEMENTS);
  $("sample").title = info.sample_source === "prior"
    ? "decode z ~ N(0, I): the VAE's prior" : "decode z from a Gaussian fitted to the encoded data";
  $("diff-gain").textContent = DIFF_GAIN;
  bindEvents();
  await loadIndex(0);
}

function bindEvents() {
  $("prev").addEventListener("click", () => loadIndex(state.index === null ? 0 : state.index - 1));
  $("next").addEventListener("click", () => loadIndex(state.index === null ? 0 : state.index + 1));
  $("index").addEventListener("change", (e) => loadIndex(parseInt(e.target.value, 10) || 0));
  $("upload").addEventListener("change", onUpload);
  $("reset").addEventListener("click", () => { stopInterp(); setZ(state.zOrig.slice()); setStatus("reset to the image's latent"); });
  $("sample").addEventListener("click", onSample);
  $("download").addEventListener("click", onDownload);
  $("copy").addEventListener("click", onCopy);
  $("apply").addEventListener("click", onApply);
  $("expr").addEventListener("keydown", (e) => { if (e.key === "Enter") onApply(); });
  $("interp-set").addEventListener("click", onInterpSet);
  $("interp").addEventListener("input", onInterp);
  $("add-element-btn").addEventListener("click", () => addElement(parseInt($("add-element").value, 10)));
  $("img-recon").addEventListener("load", () => { state.reconPixels = pixelsOf($("img-recon")); drawDiff(); });
  $("img-edited").addEventListener("load", drawDiff);
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select, button")) return;
    if (e.key === "ArrowLeft") $("prev").click();
    if (e.key === "ArrowRight") $("next").click();
  });
}

// ---------------------------------------------------------------------------------- picking an image

async function loadIndex(i) {
  const n = state.info.n_images;
  i = clamp(i, 0, n - 1);
  try {
    const view = await (await api(`/api/image/${i}`)).json();
    setView(view, `image #${i}`);
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function onUpload(e) {
  const file = e.target.files[0];
  e.target.value = ""; // the same file again fires another change
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  setStatus(`uploading ${file.name}…`);
  try {
    const view = await (await api("/api/upload", { method: "POST", body: form })).json();
    setView(view, `upload ${file.name}`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

function setView(view, name) {
  state.index = view.index;
  state.zOrig = view.z.slice();
  state.z = view.z.slice();
  state.reconPixels = null;
  $("img-original").src = view.original;
  $("img-recon").src = view.reconstruction;
  if (view.index !== null) $("index").value = view.index;
  const tag = $("image-label");
  tag.hidden = view.label === undefined && view.index !== null;
  tag.textContent = view.index === null ? name : `label: ${view.label}`;
  showAnomaly(view.anomaly);
  stopInterp();
  renderStrip();
  renderSliders();
  updateExpr();
  requestDecode();
  setStatus(`${name}: move a slider to edit its latent`);
}

function renderStrip() {
  const n = state.info.n_images;
  const centre = state.index === null ? 0 : state.index;
  const strip = $("strip");
  const count = Math.max(3, Math.floor(strip.clientWidth / THUMB_PX));
  const start = clamp(centre - Math.floor(count / 2), 0, Math.max(0, n - count));
  strip.replaceChildren();
  for (let i = start; i < Math.min(n, start + count); i++) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "thumb" + (i === state.index ? " active" : "");
    b.title = `image #${i}`;
    b.setAttribute("role", "option");
    b.setAttribute("aria-selected", String(i === state.index));
    const img = document.createElement("img");
    img.src = `/api/thumb/${i}`;
    img.alt = `#${i}`;
    b.append(img);
    b.addEventListener("click", () => loadIndex(i));
    strip.append(b);
  }
}

// ---------------------------------------------------------------------------------- sliders

function sliderSpan(element) {
  const { lo, hi, bound_lo: blo, bound_hi: bhi } = state.info;
  const w = Math.max(hi[element] - lo[element], 1e-3);
  const min = Math.min(lo[element] - 0.5 * w, state.zOrig[element], state.z[element]);
  const max = Math.max(hi[element] + 0.5 * w, state.zOrig[element], state.z[element]);
  return [Math.max(min, blo[element]), Math.min(max, bhi[element])];
}

function renderSliders() {
  const box = $("sliders");
  box.replaceChildren();
  const removable = state.info.latent_dim > TOP_ELEMENTS;
  for (const element of state.shown) box.append(sliderRow(element, removable));
  const D = state.info.latent_dim;
  $("elements-note").textContent = D <= TOP_ELEMENTS ? `${D}` : `${state.shown.length} of ${D}, most effective first`;
}

function sliderRow(element, removable) {
  const row = document.createElement("div");
  row.className = "slider-row";
  row.dataset.element = element;
  const r = state.rank.get(element);
  const effect = r ? clamp((r.effect || 0) / state.maxEffect, 0, 1) : 0;
  const title = r ? `rank ${r.rank + 1} of ${state.info.latent_dim}: effect ${fmt(r.effect)}`
    + (r.kl !== null && r.kl !== undefined ? `, KL ${fmt(r.kl)}` : "") : "not ranked";
  row.innerHTML = `
    <div class="slider-label">
      <span class="element-name">z[${element}]</span>
      <span class="rank" title="${title}">${r ? "#" + (r.rank + 1) : ""}</span>
      <span class="effect" title="${title}"><i></i></span>
      <span class="val"></span>
      ${removable ? '<button type="button" class="remove" title="remove this slider">×</button>' : ""}
    </div>
    <div class="track"><input type="range" aria-label="z[${element}]"><span class="orig-mark" title="original value"></span></div>
    <div class="slider-values muted">orig ${fmt(state.zOrig[element])} · typical ${fmt(state.info.lo[element])} … ${fmt(state.info.hi[element])}</div>`;
  row.querySelector(".effect i").style.width = `${(effect * 100).toFixed(1)}%`;
  const input = row.querySelector("input");
  input.addEventListener("input", () => {
    state.z[element] = parseFloat(input.value);
    row.querySelector(".val").textContent = fmt(state.z[element]);
    row.classList.toggle("changed", state.z[element] !== state.zOrig[element]);
    updateExpr();
    requestDecode();
  });
  input.addEventListener("change", () => describeSoon(0));
  const remove = row.querySelector(".remove");
  if (remove) remove.addEventListener("click", () => { state.shown = state.shown.filter((d) => d !== element); renderSliders(); });
  syncSlider(row, element);
  return row;
}

function syncSlider(row, element) {
  const input = row.querySelector("input");
  const [min, max] = sliderSpan(element);
  const pct = (v) => (100 * (v - min) / (max - min || 1)).toFixed(2) + "%";
  input.min = min;
  input.max = max;
  input.step = (max - min) / 1000 || "any";
  input.value = state.z[element];
  row.style.setProperty("--lo", pct(clamp(state.info.lo[element], min, max)));
  row.style.setProperty("--hi", pct(clamp(state.info.hi[element], min, max)));
  row.style.setProperty("--orig", clamp((state.zOrig[element] - min) / (max - min || 1), 0, 1).toFixed(4));
  row.querySelector(".val").textContent = fmt(state.z[element]);
  row.classList.toggle("changed", Math.abs(state.z[element] - state.zOrig[element]) > 1e-9);
}

function syncSliders() {
  for (const row of $("sliders").children) syncSlider(row, Number(row.dataset.element));
}

function addElement(element) {
  const D = state.info.latent_dim;
  if (!Number.isInteger(element) || element < 0 || element >= D) {
    setStatus(`element ${element}: expected 0 to ${D - 1}`, true);
    return;
  }
  if (!state.shown.includes(element)) state.shown.push(element);
  renderSliders();
  const row = $("sliders").querySelector(`[data-element="${element}"]`);
  row.scrollIntoView({ block: "nearest" });
  row.querySelector("input").focus();
}

function setZ(z) {
  state.z = z;
  syncSliders();
  updateExpr();
  requestDecode();
}

// ---------------------------------------------------------------------------------- decoding

function requestDecode() {
  const d = state.decode;
  d.dirty = true;
  if (!d.scheduled) {
    d.scheduled = true;
    requestAnimationFrame(flushDecode);
  }
}

async function flushDecode() {
  const d = state.decode;
  d.scheduled = false;
  if (d.inFlight || !d.dirty) return;
  d.dirty = false;
  d.inFlight = true;
  try {
    const res = await postJSON("/api/decode", { z: state.z });
    const timing = /dur=([\d.]+)/.exec(res.headers.get("Server-Timing") || "");
    showEdited(await res.blob());
    if (timing) $("timing").textContent = `decode ${parseFloat(timing[1]).toFixed(1)} ms`;
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    d.inFlight = false;
    if (d.dirty) requestDecode();
    else describeSoon(150);
    if (performance.now() - state.lastDescribe > DESCRIBE_EVERY_MS) describeSoon(0);
  }
}

function showEdited(blob) {
  const old = state.editedUrl;
  state.editedBlob = blob;
  state.editedUrl = URL.createObjectURL(blob);
  $("img-edited").src = state.editedUrl;
  if (old) URL.revokeObjectURL(old);
}

// ---------------------------------------------------------------------------------- difference map

const LUT = (() => { // a dark-to-bright ramp (black, purple, orange, yellow)
  const stops = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = stops[k][c] + f * (stops[k + 1][c] - stops[k][c]);
  }
  return lut;
})();

function pixelsOf(img) {
  if (!img.complete || !img.naturalWidth) return null;
  const c = document.createElement("canvas");
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0);
  return ctx.getImageData(0, 0, c.width, c.height);
}

function drawDiff() {
  const a = state.reconPixels;
  const b = pixelsOf($("img-edited"));
  if (!a || !b || a.width !== b.width || a.height !== b.height) return;
  const canvas = $("diff");
  canvas.width = a.width;
  canvas.height = a.height;
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(a.width, a.height);
  for (let p = 0; p < a.data.length; p += 4) {
    const d = (Math.abs(a.data[p] - b.data[p]) + Math.abs(a.data[p + 1] - b.data[p + 1])
      + Math.abs(a.data[p + 2] - b.data[p + 2])) / 3;
    const v = Math.min(255, Math.round(d * DIFF_GAIN)) * 3;
    out.data[p] = LUT[v]; out.data[p + 1] = LUT[v + 1]; out.data[p + 2] = LUT[v + 2]; out.data[p + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
}

// ---------------------------------------------------------------------------------- measurements

function isEdited() { return state.z.some((v, i) => Math.abs(v - state.zOrig[i]) > 1e-9); }

function describeSoon(delay) {
  clearTimeout(state.describeTimer);
  state.describeTimer = setTimeout(describeNow, delay);
}

async function describeNow() {
  const seq = ++state.describeSeq;
  state.lastDescribe = performance.now();
  const p = $("description");
  if (!isEdited()) {
    p.textContent = "no edit yet: the edited image is the reconstruction";
    $("desc-table").hidden = true;
    return;
  }
  try {
    const { description } = await (await postJSON("/api/describe", { z_ref: state.zOrig, z: state.z })).json();
    if (seq === state.describeSeq) showDescription(description);
  } catch (e) {
    setStatus(e.message, true);
  }
}

function showDescription(d) {
  $("description").textContent = d.text;
  $("description").classList.remove("muted");
  const rows = [["MSE", fmt(d.mse)], ["PSNR", `${fmt(d.psnr)} dB`],
    ["brightness", signed(d.brightness)], ["contrast", signed(d.contrast)]];
  for (const [ch, v] of Object.entries(d.channel_shift || {})) rows.push([`shift ${ch}`, signed(v)]);
  rows.push(["most change", `${d.top_region} (${(100 * d.top_share).toFixed(0)}%)`]);
  for (const [name, v] of Object.entries(d.factors || {})) rows.push([`factor ${name}`, signed(v)]);
  const table = $("desc-table");
  table.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    const td = document.createElement("td");
    th.textContent = k;
    td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
  table.hidden = false;
}

function signed(v) { return v === null || v === undefined ? "—" : (v > 0 ? "+" : "") + fmt(v); }

function showAnomaly(a) {
  const p = $("anomaly");
  const bar = $("anomaly-bar");
  p.classList.remove("muted");
  p.textContent = `${a.kind} ${fmt(a.score)}: higher than ${a.percentile.toFixed(1)}% of ${a.n_reference} ${a.reference}`;
  bar.style.width = `${clamp(a.percentile, 0, 100)}%`;
  bar.classList.toggle("high", a.percentile >= 95);
}

// ---------------------------------------------------------------------------------- buttons

async function onSample() {
  const seed = Math.floor(Math.random() * 2 ** 31);
  try {
    const { z, source } = await (await postJSON("/api/sample", { seed })).json();
    stopInterp();
    setZ(z);
    setStatus(`random sample from the ${source === "prior" ? "prior N(0, I)" : "Gaussian fitted to the data"} (seed ${seed})`);
  } catch (e) {
    setStatus(e.message, true);
  }
}

function onDownload() {
  if (!state.editedUrl) return;
  const a = document.createElement("a");
  a.href = state.editedUrl;
  a.download = state.index === null ? "latentlab-upload-edit.png" : `latentlab-${state.index}-edit.png`;
  document.body.append(a);
  a.click();
  a.remove();
}

function editExpression() {
  const parts = [];
  state.z.forEach((v, i) => {
    if (Math.abs(v - state.zOrig[i]) > 1e-9) parts.push(`z[${i}]=${Number(v.toPrecision(6))}`);
  });
  return parts.join(";");
}

function updateExpr() {
  const input = $("expr");
  if (document.activeElement !== input) input.value = editExpression();
}

async function onCopy() {
  const text = editExpression();
  if (!text) { setStatus("no edit to copy yet"); return; }
  $("expr").value = text;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    $("expr").select();
    document.execCommand("copy");
  }
  const shown = text.length > 60 ? text.slice(0, 57) + "…" : text;
  setStatus(state.index === null ? `copied: ${shown}`
    : `copied: latentlab edit RUN --index ${state.index} --edit '${shown}'`);
}

async function onApply() {
  const text = $("expr").value.trim();
  if (!text) { setZ(state.zOrig.slice()); return; }
  try {
    const { z } = await (await postJSON("/api/edit", { z: state.zOrig, edits: text })).json();
    stopInterp();
    const changed = z.map((v, i) => (Math.abs(v - state.zOrig[i]) > 1e-9 ? i : -1)).filter((i) => i >= 0);
    const missing = changed.filter((i) => !state.shown.includes(i));
    if (missing.length && missing.length <= 32) { state.shown.push(...missing); renderSliders(); }
    $("expr").blur();
    setZ(z);
    setStatus(`applied ${text.length > 60 ? text.slice(0, 57) + "…" : text}`);
  } catch (e) {
    setStatus(e.message, true);
  }
}

async function onInterpSet() {
  const j = clamp(parseInt($("interp-index").value, 10) || 0, 0, state.info.n_images - 1);
  try {
    const view = await (await api(`/api/image/${j}`)).json();
    state.interp = { from: state.z.slice(), to: view.z };
    const slider = $("interp");
    slider.disabled = false;
    slider.value = 0;
    $("interp-value").textContent = `t = 0.00 → #${j}`;
    setStatus(`drag the interpolation slider: from the current latent to image #${j}`);
  } catch (e) {
    setStatus(e.message, true);
  }
}

function onInterp() {
  if (!state.interp) return;
  const t = parseFloat($("interp").value);
  const { from, to } = state.interp;
  $("interp-value").textContent = `t = ${t.toFixed(2)}`;
  setZ(from.map((a, i) => a + t * (to[i] - a)));
}

function stopInterp() {
  state.interp = null;
  $("interp").disabled = true;
  $("interp").value = 0;
  $("interp-value").textContent = "t = 0.00";
}

init().catch((e) => setStatus(`could not start: ${e.message}`, true));

/* console.js - the tripletd console: model, live figures, embedding map, search, triplet playground. */
'use strict';
const { svgEl, fmtNum, lineChart, barChart, numberLine } = window.Charts;
const $ = (sel, root) => (root || document).querySelector(sel);
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const KEY_STORE = 'tripletd-api-key';
let key = sessionStorage.getItem(KEY_STORE) || '';
let model = null, gallery = null, liveTimer = null;
const imageUrls = new Map(); /* gallery index -> object URL */

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) {
    if (k === 'text') e.textContent = attrs[k];
    else if (k === 'class') e.className = attrs[k];
    else e.setAttribute(k, attrs[k]);
  }
  for (const c of kids) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function colour(label) {
  if (label === null || label === undefined) return PALETTE[0];
  const n = Number(label);
  return n >= 0 && n < PALETTE.length ? PALETTE[n] : `hsl(${(n * 47) % 360} 60% 50%)`;
}

function panelMsg(id, text) { $(`#${id} .msg`).textContent = text || ''; }

/* Every request: the key when there is one; JSON in and out; errors as ApiError
 * with the server's message. A 401 brings the key form back. */
async function api(path, body, asBlob) {
  const headers = {};
  if (key) headers.Authorization = 'Bearer ' + key;
  const opt = { headers };
  if (body !== undefined) {
    opt.method = 'POST';
    headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  let r;
  try { r = await fetch(path, opt); } catch (e) { throw new ApiError(0, 'the server does not answer (' + e.message + ')'); }
  if (r.status === 401) {
    askKey(key ? 'The server refused this key (401 unauthorized). Enter the API key again.'
               : 'This server wants an API key (401 unauthorized).');
    throw new ApiError(401, 'unauthorized: an API key is needed');
  }
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { const j = await r.json(); if (j.error) msg = j.error.code + ' ' + j.error.type + ': ' + j.error.message; } catch (e) { /* not JSON */ }
    throw new ApiError(r.status, msg);
  }
  return asBlob ? r.blob() : r.json();
}

function askKey(message) {
  $('#auth-msg').textContent = message;
  $('#auth').hidden = false;
  $('#panels').hidden = true;
  if (liveTimer) { clearInterval(liveTimer); liveTimer = null; }
  $('#conn').textContent = 'API key needed';
  $('#auth-key').focus();
}

/* ---- model panel ------------------------------------------------------ */

function kv(dl, pairs) {
  dl.replaceChildren();
  for (const [k, v, testid] of pairs) {
    if (v === undefined) continue;
    const dd = el('dd', testid ? { 'data-testid': testid, class: 'mono' } : {});
    dd.textContent = v === null ? '-' : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v);
    dl.append(el('dt', { text: k }), dd);
  }
}

function describeLayers(m) {
  if (Array.isArray(m.layers) && m.layers.length)
    return m.layers.map(l => `${l.in}\u2192${l.out} ${l.activation}`).join(', ');
  if (Array.isArray(m.ops) && m.ops.length) return m.ops.map(o => (typeof o === 'string' ? o : o.op || o.type)).join(', ');
  return undefined;
}

async function loadModel() {
  model = await api('/v1/model');
  kv($('#model-info'), [
    ['name', model.name], ['format', model.format], ['layers / ops', describeLayers(model)],
    ['dims', `${model.input_dim} \u2192 ${model.output_dim}`], ['image input', model.image ? JSON.stringify(model.image) : undefined],
    ['normalize', model.normalize], ['metric', model.metric], ['loss', model.loss], ['margin', model.margin],
    ['parameters', model.parameters !== undefined ? Number(model.parameters).toLocaleString('en') : undefined],
    ['sha256', model.sha256, 'model-sha256'], ['generation', model.generation], ['loaded at', model.loaded_at]]);
  if ($('#t-margin').value === '') $('#t-margin').value = model.margin;
  try {
    gallery = await api('/v1/gallery');
    kv($('#gallery-info'), [['size', gallery.size], ['dim', gallery.dim],
      ['labels', gallery.labels ? gallery.n_labels + ' distinct' : 'none'], ['ids', gallery.ids],
      ['images', gallery.images], ['model match', gallery.model_match], ['sha256', gallery.sha256]]);
  } catch (e) {
    gallery = null;
    if (e.status === 401) throw e;
    kv($('#gallery-info'), [['gallery', e.status === 409 ? 'none loaded (tripletd --gallery PATH)' : e.message]]);
  }
  const shape = imageShape();
  $('#search-file-note').textContent = model.image ? `(sent to the server: the model takes ${shape.w}\u00d7${shape.h} images)`
    : shape ? `(resized here to ${shape.w}\u00d7${shape.h}, ${shape.c === 1 ? 'grey' : 'RGB'})` : '(this model does not take images)';
}

/* ---- live panel ------------------------------------------------------- */

let liveTicks = 0;

/* Every 10 s: has the server reloaded (SIGHUP, /v1/admin/reload)? Then the
 * model panel and the map describe the old snapshot: load them again. */
async function checkReload() {
  try {
    const m = await api('/v1/model');
    if (model && m.generation !== model.generation) { await loadModel(); loadMap(); }
  } catch (e) { /* refreshLive reports the connection */ }
}

async function refreshLive() {
  if (++liveTicks % 5 === 0) checkReload();
  let s;
  try { s = await api('/v1/stats?window=60'); } catch (e) {
    panelMsg('live', e.message);
    $('#conn').textContent = e.status === 401 ? 'API key needed' : 'disconnected';
    return;
  }
  panelMsg('live', '');
  $('#conn').textContent = 'live, ' + new Date(s.now * 1000).toLocaleTimeString();
  $('#live-rps').textContent = fmtNum(s.rps);
  $('#live-p50').textContent = fmtNum(s.p50_ms);
  $('#live-p99').textContent = fmtNum(s.p99_ms);
  $('#live-inflight').textContent = s.in_flight;
  $('#live-errors').textContent = s.errors;
  lineChart($('#chart-rps'), s.series.requests, '-10 min', 'now');
  lineChart($('#chart-p99'), s.series.p99_ms, '-10 min', 'now');
  const tb = $('#live-routes tbody');
  tb.replaceChildren(...s.routes.map(r => el('tr', {}, el('td', { text: r.route }), el('td', { text: r.requests }),
    el('td', { text: fmtNum(r.rps) }), el('td', { text: r.errors }), el('td', { text: fmtNum(r.p50_ms) }),
    el('td', { text: fmtNum(r.p99_ms) }))));
  $('#live-status').replaceChildren(...Object.entries(s.status).map(([k, v]) => el('li', { text: `${k}: ${v}` })));
  $('#live-batch-mean').textContent = s.batch.requests ? `mean ${fmtNum(s.batch.mean)}` : '';
  barChart($('#chart-batch'), s.batch.histogram, le => (le === null ? '>4096' : '\u2264' + le));
  const t = s.triplets, total = t.easy + t.semi_hard + t.hard;
  $('#live-cats').replaceChildren(...['easy', 'semi_hard', 'hard'].map(c => {
    const d = el('div', { class: 'cat-' + c, title: `${c.replace('_', '-')}: ${t[c]}` });
    d.style.flexGrow = total ? t[c] : 1;
    d.textContent = `${c.replace('_', '-')} ${t[c]}`;
    return d;
  }));
  barChart($('#chart-loss'), t.loss_histogram, le => (le === null ? '>1' : String(le)), true);
}

/* ---- images ----------------------------------------------------------- */

async function galleryImage(index) {
  if (!gallery || !gallery.images) return null;
  if (imageUrls.has(index)) return imageUrls.get(index);
  try {
    const url = URL.createObjectURL(await api(`/v1/gallery/items/${index}/image`, undefined, true));
    imageUrls.set(index, url);
    return url;
  } catch (e) { return null; }
}

function imageShape() {
  if (!model) return null;
  const im = model.image;
  if (im && im.height && im.width) return { c: im.channels || 1, h: im.height, w: im.width };
  const s1 = Math.round(Math.sqrt(model.input_dim)), s3 = Math.round(Math.sqrt(model.input_dim / 3));
  if (s1 * s1 === model.input_dim) return { c: 1, h: s1, w: s1 };
  if (s3 * s3 * 3 === model.input_dim) return { c: 3, h: s3, w: s3 };
  return null;
}

/* A PNG/JPEG file as a model input. A model with `image` metadata gets the
 * file itself, {"image": base64}, decoded and resized by the server as the
 * model's image rule says; any other model that takes a square of pixels
 * gets them decoded and resized here: values 0..255, CHW. */
async function fileToInput(file) {
  if (model && model.image) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return { image: btoa(bin) };
  }
  const shape = imageShape();
  if (!shape) throw new Error(`this model takes ${model.input_dim} values, not an image`);
  let bmp;
  try { bmp = await createImageBitmap(file); } catch (e) { throw new Error(`${file.name}: not an image this browser can read`); }
  const cv = document.createElement('canvas');
  cv.width = shape.w;
  cv.height = shape.h;
  const cx = cv.getContext('2d', { willReadFrequently: true });
  cx.drawImage(bmp, 0, 0, shape.w, shape.h);
  const px = cx.getImageData(0, 0, shape.w, shape.h).data, n = shape.w * shape.h;
  const out = new Array(shape.c * n);
  for (let i = 0; i < n; i++) {
    const r = px[4 * i], g = px[4 * i + 1], b = px[4 * i + 2];
    if (shape.c === 1) out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else { out[i] = r; out[n + i] = g; out[2 * n + i] = b; }
  }
  return out;
}

/* ---- hits (map neighbours, search results) ---------------------------- */

function hitList(ol, hits, testid) {
  ol.replaceChildren();
  for (const h of hits) {
    const li = el('li', { 'data-index': h.index, 'data-label': h.label === null ? '' : h.label });
    if (testid) li.setAttribute('data-testid', testid);
    const img = el('img', { alt: '', hidden: '' });
    li.append(el('span', { class: 'hit' }, img,
      el('span', {}, el('span', { class: 'swatch' }), `#${h.index}`, h.id ? ` ${h.id}` : '',
        ` label ${h.label === null ? '-' : h.label}, distance ${fmtNum(h.distance)}`)));
    li.querySelector('.swatch').style.background = colour(h.label);
    ol.append(li);
    galleryImage(h.index).then(u => { if (u) { img.src = u; img.hidden = false; } });
  }
}

/* ---- embedding map ---------------------------------------------------- */

let mapPoints = [];

async function loadMap() {
  const svg = $('#map-svg');
  if (!gallery) { $('#map-note').textContent = '(no gallery loaded)'; return; }
  const n = Math.max(1, Math.min(20000, Number($('#map-n').value) || 2000));
  let p;
  try { p = await api(`/v1/gallery/projection?n=${n}`); } catch (e) { panelMsg('map', e.message); return; }
  panelMsg('map', '');
  mapPoints = p.points;
  const W = 1000, H = 640, pad = 16;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const q of mapPoints) { x0 = Math.min(x0, q.x); x1 = Math.max(x1, q.x); y0 = Math.min(y0, q.y); y1 = Math.max(y1, q.y); }
  const sx = (W - 2 * pad) / Math.max(1e-12, x1 - x0), sy = (H - 2 * pad) / Math.max(1e-12, y1 - y0);
  const r = mapPoints.length > 5000 ? 1.8 : mapPoints.length > 1500 ? 2.6 : 3.5;
  const frag = document.createDocumentFragment(), counts = new Map();
  mapPoints.forEach((q, i) => {
    frag.append(svgEl('circle', { cx: (pad + (q.x - x0) * sx).toFixed(1), cy: (H - pad - (q.y - y0) * sy).toFixed(1),
      r, fill: colour(q.label), 'data-i': i }));
    counts.set(q.label, (counts.get(q.label) || 0) + 1);
  });
  svg.replaceChildren(frag);
  svg.setAttribute('data-points', mapPoints.length);
  const ev = p.explained_variance_ratio.map(v => (100 * v).toFixed(1) + '%').join(' + ');
  $('#map-note').textContent = `${p.n} of ${p.size} items (${p.sample}), PCA explains ${ev}`;
  $('#map-legend').replaceChildren(...[...counts.entries()].sort((a, b) => (a[0] ?? -1) - (b[0] ?? -1)).map(([lab, c]) => {
    const li = el('li', {}, el('span', { class: 'swatch' }), `label ${lab === null ? '-' : lab} (${c})`);
    li.firstChild.style.background = colour(lab);
    return li;
  }));
}

function showTip(i, evt) {
  const q = mapPoints[i], tip = $('#map-tip'), wrap = $('.mapwrap').getBoundingClientRect();
  if (!q) return;
  const img = el('img', { alt: '', hidden: '' });
  tip.replaceChildren(el('div', { text: `#${q.index}${q.id ? ' ' + q.id : ''}` }), el('div', { text: `label ${q.label ?? '-'}` }), img);
  galleryImage(q.index).then(u => { if (u && tip.contains(img)) { img.src = u; img.hidden = false; } });
  tip.hidden = false;
  const x = evt.clientX - wrap.left + 12, y = evt.clientY - wrap.top + 12;
  tip.style.left = Math.min(x, wrap.width - 140) + 'px';
  tip.style.top = y + 'px';
}

async function neighbours(index, k) {
  const box = $('#map-nn');
  box.replaceChildren(el('p', { class: 'muted', text: `neighbours of #${index}...` }));
  try {
    const item = await api(`/v1/gallery/items/${index}`);
    const res = await api('/v1/search', { queries: [item.embedding], k: k + 1, embed: false });
    const hits = res.results[0].filter(h => h.index !== index).slice(0, k);
    const ol = el('ol', { class: 'results' });
    hitList(ol, hits);
    box.replaceChildren(el('h3', { text: `${hits.length} nearest to #${index} (label ${item.label ?? '-'}, ${res.metric})` }), ol);
    const idx = new Set(hits.map(h => h.index));
    for (const c of $('#map-svg').querySelectorAll('circle')) {
      const q = mapPoints[c.getAttribute('data-i')];
      c.classList.toggle('sel', q.index === index);
      c.classList.toggle('nn', idx.has(q.index));
    }
  } catch (e) { box.replaceChildren(); panelMsg('map', e.message); }
}

/* ---- search ----------------------------------------------------------- */

let searchSource = 'vector';

function parseVector(text, what) {
  let v;
  try { v = JSON.parse(text); } catch (e) { throw new Error(`${what}: not JSON (${e.message})`); }
  if (!Array.isArray(v) || !v.length || v.some(x => typeof x !== 'number')) throw new Error(`${what}: expected a JSON array of numbers`);
  return v;
}

/* A vector as a query: a model input is embedded, an embedding is not. */
function queryMode(v, what) {
  if (v.length === model.input_dim) return true;
  if (gallery && v.length === gallery.dim) return false;
  throw new Error(`${what}: ${v.length} values; the model takes ${model.input_dim}` + (gallery ? `, the gallery holds ${gallery.dim}` : ''));
}

async function runSearch() {
  const ol = $('#search-results');
  panelMsg('search', '');
  if (!gallery) { panelMsg('search', 'no gallery is loaded (tripletd --gallery PATH)'); return; }
  const k = Math.max(1, Math.min(100, Number($('#search-k').value) || 8));
  try {
    const file = $('#search-file').files[0];
    let q, embed = true;
    if (searchSource === 'file' && file) q = await fileToInput(file);
    else {
      q = parseVector($('#search-vector').value, 'vector');
      embed = queryMode(q, 'vector');
    }
    const res = await api('/v1/search', { queries: [q], k, embed });
    hitList(ol, res.results[0], 'search-result');
    ol.setAttribute('data-k', res.results[0].length);
  } catch (e) { ol.replaceChildren(); panelMsg('search', e.message); }
}

/* ---- triplet playground ----------------------------------------------- */

async function resolveSlot(id, what) {
  const file = $(`#${id}-file`).files[0], text = $(`#${id}`).value.trim();
  if (file) return (await api('/v1/embed', { inputs: [await fileToInput(file)] })).embeddings[0];
  if (/^\d+$/.test(text)) return (await api(`/v1/gallery/items/${text}`)).embedding;
  const v = parseVector(text, what);
  return queryMode(v, what) ? (await api('/v1/embed', { inputs: [v] })).embeddings[0] : v;
}

async function runTriplet() {
  panelMsg('triplet', '');
  try {
    const [a, p, n] = await Promise.all([resolveSlot('t-a', 'anchor'), resolveSlot('t-p', 'positive'), resolveSlot('t-n', 'negative')]);
    const margin = Number($('#t-margin').value);
    const r = await api('/v1/loss/triplet', { anchors: [a], positives: [p], negatives: [n], embed: false, margin });
    const cat = r.categories[0];
    kv($('#triplet-out'), [['d_ap', fmtNum(r.d_ap[0])], ['d_an', fmtNum(r.d_an[0])], ['loss', fmtNum(r.losses[0])],
      ['category', cat.replace('_', '-')], ['metric, margin', `${r.config.metric}, ${r.config.margin}`]]);
    const dd = $('#triplet-out').querySelectorAll('dd')[3];
    dd.className = 'cat ' + cat.replace('-', '_');
    numberLine($('#triplet-line'), r.d_ap[0], r.d_an[0], r.config.margin);
  } catch (e) { panelMsg('triplet', e.message); }
}

/* ---- start ------------------------------------------------------------ */

async function start() {
  $('#auth').hidden = true;
  $('#panels').hidden = false;
  try { await loadModel(); } catch (e) {
    if (e.status !== 401) { panelMsg('model', e.message); $('#conn').textContent = 'disconnected'; }
    return;
  }
  refreshLive();
  if (!liveTimer) liveTimer = setInterval(refreshLive, 2000);
  loadMap();
}

function wire() {
  $('#auth').addEventListener('submit', e => {
    e.preventDefault();
    key = $('#auth-key').value.trim();
    sessionStorage.setItem(KEY_STORE, key);
    start();
  });
  $('#map-form').addEventListener('submit', e => {
    e.preventDefault();
    const pick = $('#map-pick').value;
    loadMap().then(() => { if (pick !== '') neighbours(Number(pick), Number($('#map-k').value) || 8); });
  });
  const svg = $('#map-svg');
  svg.addEventListener('mousemove', e => { const i = e.target.getAttribute && e.target.getAttribute('data-i'); if (i !== null) showTip(Number(i), e); else $('#map-tip').hidden = true; });
  svg.addEventListener('mouseleave', () => { $('#map-tip').hidden = true; });
  svg.addEventListener('click', e => {
    const i = e.target.getAttribute && e.target.getAttribute('data-i');
    if (i === null) return;
    const q = mapPoints[Number(i)];
    $('#map-pick').value = q.index;
    neighbours(q.index, Number($('#map-k').value) || 8);
  });
  $('#search-file').addEventListener('change', () => { searchSource = 'file'; if ($('#search-file').files[0]) runSearch(); });
  $('#search-vector').addEventListener('input', () => { searchSource = 'vector'; });
  $('#search-form').addEventListener('submit', e => { e.preventDefault(); runSearch(); });
  $('#triplet-form').addEventListener('submit', e => { e.preventDefault(); runTriplet(); });
  if (document.body.dataset.auth === 'key' && !key) askKey('This server wants an API key (tripletd --api-key). It is kept in this tab only (sessionStorage).');
  else start();
}

wire();

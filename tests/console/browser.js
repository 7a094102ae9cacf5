// tests/console/browser.js - drive the web console in headless Chromium (puppeteer-core) against real tripletd servers.
// Usage: node browser.js URL KEYED_URL KEY OUTDIR IMAGE_URL
// URL serves the shipped model with a Fashion-MNIST gallery and no key; KEYED_URL the same with --api-key KEY;
// IMAGE_URL an ONNX CNN with `image` metadata and its own gallery.
// Prints "ok ..." / "FAIL ..." lines; exits 1 on any failure. Screenshots go to OUTDIR.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const puppeteer = require(path.join(__dirname, '..', 'node_modules', 'puppeteer-core'));

const [URL, KEYED_URL, KEY, OUT, IMAGE_URL] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const K = 8;
let fails = 0, passes = 0;
const ok = m => { console.log('ok   ' + m); passes++; };
const bad = m => { console.log('FAIL ' + m); fails++; };
const check = (c, m) => (c ? ok(m) : bad(m));
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function call(base, p, body, key) {
  const headers = {};
  if (key) headers.Authorization = 'Bearer ' + key;
  if (body) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + p, { method: body ? 'POST' : 'GET', headers, body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, json: await r.json() };
}

/* ---- a Fashion-MNIST test image as an 8-bit grey PNG ---- */
const CRC = new Int32Array(256).map((_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c; });
function crc32(buf) { let c = -1; for (const b of buf) c = CRC[(c ^ b) & 255] ^ (c >>> 8); return (c ^ -1) >>> 0; }
function chunk(type, data) {
  const len = Buffer.alloc(4), crc = Buffer.alloc(4), td = Buffer.concat([Buffer.from(type), data]);
  len.writeUInt32BE(data.length);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function greyPng(px, w, h) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0;
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) px.copy(raw, y * (w + 1) + 1, y * w, (y + 1) * w);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/* Watch a page: console errors, page errors, failed requests, HTTP errors. */
function watch(page) {
  const w = { errors: [], failed: [], http: [] };
  page.on('console', m => { if (m.type() === 'error') w.errors.push(m.text()); });
  page.on('pageerror', e => w.errors.push('pageerror: ' + e.message));
  page.on('requestfailed', r => w.failed.push(r.url() + ' ' + (r.failure() ? r.failure().errorText : '')));
  page.on('response', r => { if (r.status() >= 400) w.http.push(r.status() + ' ' + r.url()); });
  page.on('request', r => { if (!r.url().startsWith(URL) && !r.url().startsWith(KEYED_URL) && !r.url().startsWith(IMAGE_URL) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) w.failed.push('other host: ' + r.url()); });
  return w;
}

const text = (page, sel) => page.$eval(sel, e => e.textContent.trim());
const resultIndices = page => page.$$eval('[data-testid="search-result"]', els => els.map(e => Number(e.dataset.index)));

async function shots(page, prefix) {
  for (const id of ['model', 'live', 'map', 'search', 'triplet']) {
    const el = await page.$('#' + id);
    await el.screenshot({ path: path.join(OUT, `${prefix}-${id}.png`) });
  }
}

async function main() {
  const idx = zlib.gunzipSync(fs.readFileSync('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'));
  const pixels = idx.subarray(16, 16 + 784);
  const pngPath = path.join(OUT, 'query.png');
  fs.writeFileSync(pngPath, greyPng(Buffer.from(pixels), 28, 28));
  const vec = Array.from(pixels);

  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'] });
  try {
    /* ---- no key: every panel ---- */
    const page = await browser.newPage();
    const w = watch(page);
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(URL + '/', { waitUntil: 'load' });
    const model = (await call(URL, '/v1/model')).json;
    await page.waitForFunction(() => document.querySelector('[data-testid="model-sha256"]'), { timeout: 15000 });
    check((await text(page, '[data-testid="model-sha256"]')) === model.sha256, 'model-sha256 equals /v1/model sha256 ' + model.sha256.slice(0, 12));
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="map"]').dataset.points) >= 1000, { timeout: 20000 })
      .then(() => ok('the map draws >= 1000 points'), () => bad('the map did not draw 1000 points'));
    const points = await page.$eval('[data-testid="map"]', e => [Number(e.dataset.points), e.querySelectorAll('circle').length]);
    check(points[0] === points[1], `map data-points ${points[0]} = circles drawn ${points[1]}`);

    const rps0 = Number(await text(page, '[data-testid="live-rps"]'));
    for (let i = 0; i < 40; i++) await Promise.all(Array.from({ length: 10 }, () => call(URL, '/v1/model')));
    await page.waitForFunction(r0 => Number(document.querySelector('[data-testid="live-rps"]').textContent) > r0 + 5, { timeout: 15000 }, rps0)
      .then(async () => ok(`live-rps rose after 400 requests: ${rps0} -> ${await text(page, '[data-testid="live-rps"]')}`),
        async () => bad(`live-rps did not rise: ${rps0} -> ${await text(page, '[data-testid="live-rps"]')}`));

    /* search by file: the same k indices as /v1/search on the image's pixels */
    const want = (await call(URL, '/v1/search', { queries: [vec], k: K })).json.results[0].map(h => h.index);
    const input = await page.$('[data-testid="search-file"]');
    await input.uploadFile(pngPath);
    await page.waitForFunction(k => document.querySelectorAll('[data-testid="search-result"]').length === k, { timeout: 15000 }, K)
      .catch(() => {});
    let got = await resultIndices(page);
    check(JSON.stringify(got) === JSON.stringify(want), `search-file: indices ${got} = /v1/search ${want}`);
    await page.waitForFunction(k => [...document.querySelectorAll('[data-testid="search-result"] img')].filter(i => i.complete && i.naturalWidth === 28).length === k, { timeout: 15000 }, K)
      .then(() => ok('every search result shows its 28x28 gallery image'), () => bad('search results without their images'));
    const labels = await page.$$eval('[data-testid="search-result"]', els => els.map(e => e.dataset.label));
    check(labels.length === K && labels.every(l => /^\d+$/.test(l)), 'search results carry data-label');

    /* search by vector: pasted pixels */
    await page.$eval('[data-testid="search-vector"]', (e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }, JSON.stringify(vec));
    await page.$eval('[data-testid="search-results"], #search-results', e => e.replaceChildren());
    await page.click('[data-testid="search-submit"]');
    await page.waitForFunction(k => document.querySelectorAll('[data-testid="search-result"]').length === k, { timeout: 15000 }, K)
      .catch(() => {});
    got = await resultIndices(page);
    check(JSON.stringify(got) === JSON.stringify(want), `search-vector: indices ${got} = /v1/search ${want}`);

    /* neighbours on the map, by keyboard: the index form */
    await page.focus('#map-pick');
    await page.keyboard.type('0');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#map-nn li').length > 0, { timeout: 15000 }).catch(() => {});
    const nn = await page.$$eval('#map-nn li', els => els.map(e => Number(e.dataset.index)));
    check(nn.length === K && !nn.includes(0), `map neighbours of #0: ${nn}`);
    /* a click on a point lists its neighbours too */
    await page.$eval('#map-nn', e => e.replaceChildren());
    const dot = await page.$('#map-svg circle');
    await dot.click();
    await page.waitForFunction(() => document.querySelectorAll('#map-nn li').length > 0, { timeout: 15000 })
      .then(() => ok('a click on a map point lists neighbours'), () => bad('a click on a map point listed nothing'));
    await dot.hover();
    check(!(await page.$eval('#map-tip', e => e.hidden)), 'hovering a point shows its tip');
    await page.waitForFunction(() => { const i = document.querySelector('#map-tip img'); return i && !i.hidden && i.naturalWidth === 28; }, { timeout: 10000 })
      .then(() => ok('the tip shows the point\'s image'), () => bad('the tip has no image'));

    /* triplet playground on gallery rows 0, 1, 2 */
    await page.click('#triplet-form button[type="submit"]');
    await page.waitForFunction(() => document.querySelectorAll('#triplet-out dd').length >= 4, { timeout: 15000 }).catch(() => {});
    const cat = await page.$$eval('#triplet-out dd', els => (els[3] ? els[3].textContent : ''));
    check(['easy', 'semi-hard', 'hard'].includes(cat), `triplet playground category: ${cat}`);
    check(await page.$eval('#triplet-line', e => e.querySelectorAll('circle').length === 2), 'number line draws d_ap and d_an');

    await sleep(2500); /* one more live refresh with the traffic above */
    await shots(page, 'console');
    await page.screenshot({ path: path.join(OUT, 'console-1280x800.png') });
    await page.screenshot({ path: path.join(OUT, 'console-full.png'), fullPage: true });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(OUT, 'console-overview.png'), captureBeyondViewport: true, clip: { x: 0, y: 0, width: 1280, height: 1560 } });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    await page.screenshot({ path: path.join(OUT, 'console-dark.png'), fullPage: true });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await sleep(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `phone width 390: no horizontal scroll (overflow ${overflow}px)`);
    await page.screenshot({ path: path.join(OUT, 'console-phone.png'), fullPage: true });
    /* a reload on the server shows up in the model panel and the map (checked every 10 s) */
    await page.setViewport({ width: 1280, height: 800 });
    const rl = await call(URL, '/v1/admin/reload', {});
    check(rl.status === 200, 'POST /v1/admin/reload');
    await page.waitForFunction(() => {
      const dt = [...document.querySelectorAll('#model-info dt')].find(e => e.textContent === 'generation');
      return dt && dt.nextElementSibling.textContent === '2';
    }, { timeout: 20000 }).then(() => ok('after a reload the page shows generation 2'), () => bad('the page missed the reload'));
    check(w.errors.length === 0, 'no console error' + (w.errors.length ? ': ' + w.errors.join(' | ') : ''));
    check(w.failed.length === 0, 'no failed request' + (w.failed.length ? ': ' + w.failed.join(' | ') : ''));
    check(w.http.length === 0, 'no HTTP error answer' + (w.http.length ? ': ' + w.http.join(' | ') : ''));
    await page.close();

    /* ---- an image model: the file goes to the server as {"image": base64} ---- */
    const ip = await browser.newPage();
    const iw = watch(ip);
    await ip.setViewport({ width: 1280, height: 800 });
    await ip.goto(IMAGE_URL + '/', { waitUntil: 'load' });
    const imodel = (await call(IMAGE_URL, '/v1/model')).json;
    await ip.waitForFunction(sha => { const e = document.querySelector('[data-testid="model-sha256"]'); return e && e.textContent === sha; }, { timeout: 15000 }, imodel.sha256)
      .then(() => ok(`image model ${imodel.name} (${imodel.format}): model-sha256 shown`), () => bad('image model: no model'));
    check(imodel.image && imodel.image.height === 28, 'the image model has image metadata 28x28');
    const iwant = (await call(IMAGE_URL, '/v1/search', { queries: [{ image: fs.readFileSync(pngPath).toString('base64') }], k: K })).json;
    await (await ip.$('[data-testid="search-file"]')).uploadFile(pngPath);
    await ip.waitForFunction(k => document.querySelectorAll('[data-testid="search-result"]').length === k, { timeout: 15000 }, K).catch(() => {});
    const igot = await resultIndices(ip);
    const iidx = iwant.results ? iwant.results[0].map(h => h.index) : [];
    check(iidx.length === K && JSON.stringify(igot) === JSON.stringify(iidx),
      `image model search-file: indices ${igot} = /v1/search {"image": the same PNG} ${iidx}`);
    await ip.waitForFunction(() => Number(document.querySelector('[data-testid="map"]').dataset.points) >= 1000, { timeout: 20000 })
      .then(() => ok('image model: the map draws >= 1000 points'), () => bad('image model: no map'));
    await (await ip.$('#search')).screenshot({ path: path.join(OUT, 'console-image-model-search.png') });
    check(iw.errors.length + iw.failed.length + iw.http.length === 0, 'image model page: no console error, failed request or HTTP error' +
      [...iw.errors, ...iw.failed, ...iw.http].map(e => ' | ' + e).join(''));
    await ip.close();

    /* ---- --api-key: the prompt, a wrong key, the right key ---- */
    const kp = await browser.newPage();
    const kw = watch(kp);
    await kp.setViewport({ width: 1280, height: 800 });
    await kp.goto(KEYED_URL + '/', { waitUntil: 'load' });
    await kp.waitForSelector('[data-testid="api-key"]', { visible: true, timeout: 10000 })
      .then(() => ok('with --api-key the page asks for the key'), () => bad('no key prompt'));
    check(kw.http.length === 0, 'the prompt comes before any call (no 401 yet)');
    await kp.screenshot({ path: path.join(OUT, 'console-key-prompt.png') });
    await kp.type('[data-testid="api-key"]', 'wrong-key');
    await kp.click('[data-testid="api-key-submit"]');
    await kp.waitForFunction(() => /401/.test(document.querySelector('#auth-msg').textContent) && !document.querySelector('#auth').hidden, { timeout: 10000 })
      .then(() => ok('a wrong key shows the 401 as a message'), () => bad('a wrong key: no 401 message'));
    await kp.$eval('[data-testid="api-key"]', e => { e.value = ''; });
    await kp.type('[data-testid="api-key"]', KEY);
    await kp.keyboard.press('Enter');
    const keyedModel = (await call(KEYED_URL, '/v1/model', null, KEY)).json;
    await kp.waitForFunction(sha => { const e = document.querySelector('[data-testid="model-sha256"]'); return e && e.textContent === sha; }, { timeout: 15000 }, keyedModel.sha256)
      .then(() => ok('after the key: model-sha256 shown'), () => bad('after the key: no model'));
    await kp.waitForFunction(() => Number(document.querySelector('[data-testid="map"]').dataset.points) >= 1000, { timeout: 20000 })
      .then(() => ok('after the key: the map draws'), () => bad('after the key: no map'));
    check(await kp.evaluate(() => sessionStorage.getItem('tripletd-api-key')) === KEY, 'the key is kept in sessionStorage');
    const unexpected = kw.errors.filter(e => !/401/.test(e));
    check(unexpected.length === 0, 'keyed page: no console error but the wrong key\'s 401' + (unexpected.length ? ': ' + unexpected.join(' | ') : ''));
    await kp.close();
  } finally {
    await browser.close();
  }
  if (passes + fails === 0) bad('no check ran');
  console.log(`${passes} passed, ${fails} failed`);
  process.exit(fails ? 1 : 0);
}

main().catch(e => { console.log('FAIL ' + (e.stack || e)); process.exit(1); });

/* charts.js - plain SVG charts for the console: a line over time, a bar histogram, a number line. */
(function () {
'use strict';
const SVGNS = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function viewBox(svg) {
  const v = svg.viewBox.baseVal;
  return { w: v.width, h: v.height };
}

/* A number for an axis label: 3 significant digits, no exponent for usual values. */
function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return '-';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toString();
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/* values: numbers or null (gaps), oldest first; labels for the left and right ends. */
function lineChart(svg, values, leftLabel, rightLabel) {
  const { w, h } = viewBox(svg), pad = { l: 40, r: 6, t: 8, b: 18 };
  svg.replaceChildren();
  let max = 0;
  for (const v of values) if (v !== null && v > max) max = v;
  if (max === 0) max = 1;
  const x = i => pad.l + (i / Math.max(1, values.length - 1)) * (w - pad.l - pad.r);
  const y = v => h - pad.b - (v / max) * (h - pad.t - pad.b);
  svg.append(svgEl('line', { class: 'axis', x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b }));
  svg.append(svgEl('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: pad.l, y2: h - pad.b }));
  svg.append(svgEl('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end' }, fmtNum(max)));
  svg.append(svgEl('text', { x: pad.l - 4, y: h - pad.b, 'text-anchor': 'end' }, '0'));
  svg.append(svgEl('text', { x: pad.l, y: h - 4 }, leftLabel));
  svg.append(svgEl('text', { x: w - pad.r, y: h - 4, 'text-anchor': 'end' }, rightLabel));
  let d = '', pen = false;
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
    pen = true;
  });
  if (d) svg.append(svgEl('path', { class: 'line', d }));
}

/* bins: [{le, count}] (le null: the open last bin); label(le) names a bin. */
function barChart(svg, bins, label, zeroFirst) {
  const { w, h } = viewBox(svg), pad = { l: 30, r: 4, t: 8, b: 18 };
  svg.replaceChildren();
  const max = Math.max(1, ...bins.map(b => b.count));
  const bw = (w - pad.l - pad.r) / bins.length;
  svg.append(svgEl('line', { class: 'axis', x1: pad.l, y1: h - pad.b, x2: w - pad.r, y2: h - pad.b }));
  svg.append(svgEl('text', { x: pad.l - 3, y: pad.t + 8, 'text-anchor': 'end' }, fmtNum(max)));
  bins.forEach((b, i) => {
    const bh = (b.count / max) * (h - pad.t - pad.b);
    const r = svgEl('rect', { class: 'bar' + (zeroFirst && i === 0 ? ' zero' : ''), x: pad.l + i * bw + 1,
      y: h - pad.b - bh, width: Math.max(1, bw - 2), height: bh });
    r.append(svgEl('title', {}, label(b.le) + ': ' + b.count));
    svg.append(r);
  });
  const step = Math.ceil(bins.length / 6);
  bins.forEach((b, i) => {
    if (i % step === 0)
      svg.append(svgEl('text', { x: pad.l + (i + 0.5) * bw, y: h - 4, 'text-anchor': 'middle' }, label(b.le)));
  });
}

/* d_ap, d_an and the margin band [d_ap, d_ap + margin] on one axis from 0. */
function numberLine(svg, dap, dan, margin) {
  const { w, h } = viewBox(svg), pad = 24, mid = h / 2;
  svg.replaceChildren();
  const max = Math.max(dap + margin, dan, 1e-9) * 1.15;
  const x = v => pad + (v / max) * (w - 2 * pad);
  svg.append(svgEl('rect', { class: 'band', x: x(dap), y: mid - 14, width: Math.max(1, x(dap + margin) - x(dap)), height: 28 }));
  svg.append(svgEl('line', { class: 'axis', x1: pad, y1: mid, x2: w - pad, y2: mid }));
  svg.append(svgEl('text', { x: pad, y: h - 4, 'text-anchor': 'middle' }, '0'));
  svg.append(svgEl('text', { x: w - pad, y: h - 4, 'text-anchor': 'end' }, fmtNum(max)));
  svg.append(svgEl('text', { x: (x(dap) + x(dap + margin)) / 2, y: mid - 18, 'text-anchor': 'middle' }, 'margin'));
  svg.append(svgEl('circle', { class: 'ap', cx: x(dap), cy: mid, r: 6 }));
  svg.append(svgEl('text', { x: x(dap), y: mid + 24, 'text-anchor': 'middle' }, 'd_ap ' + fmtNum(dap)));
  svg.append(svgEl('circle', { class: 'an', cx: x(dan), cy: mid, r: 6 }));
  svg.append(svgEl('text', { x: x(dan), y: mid + 38, 'text-anchor': 'middle' }, 'd_an ' + fmtNum(dan)));
}

window.Charts = { svgEl, fmtNum, lineChart, barChart, numberLine };
}());

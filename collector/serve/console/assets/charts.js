// Small SVG charts written for the console (no library, no CDN). Each chart root carries
// data-total (the sum it draws) so what a person sees can be checked against the API.
import { h, svg } from './dom.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const color = (i) => PALETTE[i % PALETTE.length];

/**
 * Stacked bars over time buckets.
 * rows: [{bucket, group, value}] -> one bar per bucket, one colour per group (top 9 + "other").
 * exactTotal: the exact sum of the values as a decimal string, shown and put in data-total.
 */
export function stackedBars(rows, { title, format = String, width = 640, height = 220, exactTotal = null } = {}) {
  const totalsByGroup = new Map();
  for (const r of rows) totalsByGroup.set(r.group, (totalsByGroup.get(r.group) || 0) + Number(r.value || 0));
  const ranked = [...totalsByGroup.entries()].sort((a, b) => b[1] - a[1]);
  const keep = new Set(ranked.slice(0, 9).map(([g]) => g));
  const groups = ranked.slice(0, 9).map(([g]) => g);
  if (ranked.length > 9) groups.push('other');
  const buckets = [...new Set(rows.map((r) => r.bucket))].sort();
  const cells = new Map();
  for (const r of rows) {
    const group = keep.has(r.group) ? r.group : 'other';
    const key = r.bucket + '\u0000' + group;
    cells.set(key, (cells.get(key) || 0) + Number(r.value || 0));
  }
  const stackOf = (b) => groups.reduce((s, g) => s + (cells.get(b + '\u0000' + g) || 0), 0);
  const max = Math.max(0, ...buckets.map(stackOf)) || 1;
  const total = rows.reduce((s, r) => s + Number(r.value || 0), 0);
  const pad = { l: 54, r: 8, t: 8, b: 28 };
  const plotW = width - pad.l - pad.r, plotH = height - pad.t - pad.b;
  const step = buckets.length ? plotW / buckets.length : plotW;
  const bars = [];
  buckets.forEach((b, i) => {
    let y = pad.t + plotH;
    groups.forEach((g, gi) => {
      const v = cells.get(b + '\u0000' + g) || 0;
      if (!v) return;
      const barH = (v / max) * plotH;
      y -= barH;
      bars.push(svg('rect', { x: (pad.l + i * step + step * 0.1).toFixed(1), y: y.toFixed(1), width: Math.max(1, step * 0.8).toFixed(1), height: Math.max(0.5, barH).toFixed(1), fill: color(gi) },
        svg('title', null, `${b} · ${g}: ${format(v)}`)));
    });
  });
  const axis = [svg('line', { x1: pad.l, y1: pad.t + plotH, x2: width - pad.r, y2: pad.t + plotH, stroke: 'currentColor', 'stroke-opacity': 0.3 }),
    svg('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end' }, format(max)),
    svg('text', { x: pad.l - 4, y: pad.t + plotH, 'text-anchor': 'end' }, format(0))];
  const labelEvery = Math.max(1, Math.ceil(buckets.length / 6));
  buckets.forEach((b, i) => {
    if (i % labelEvery === 0) axis.push(svg('text', { x: pad.l + i * step + step / 2, y: height - 10, 'text-anchor': 'middle' }, shortBucket(b)));
  });
  const legend = h('div', { class: 'legend' }, groups.map((g, gi) => h('span', null, h('i', { style: { background: color(gi) } }), `${g || '(none)'} ${format(g === 'other' ? total - ranked.slice(0, 9).reduce((s, [, v]) => s + v, 0) : totalsByGroup.get(g))}`)));
  // exactTotal: the same sum computed exactly from decimal strings (money), when the caller has them
  const shownTotal = exactTotal ?? String(total);
  return h('figure', { class: 'chart', dataset: { total: shownTotal, groups: String(groups.length) } },
    title ? h('figcaption', null, h('b', null, title), ' — total ', format(shownTotal)) : null,
    buckets.length ? svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title || 'chart' }, ...axis, ...bars) : h('p', { class: 'muted' }, 'no data in this range'),
    legend);
}

/** Horizontal bars: items [{label, value}] largest first. */
export function horizontalBars(items, { title, format = String } = {}) {
  const max = Math.max(0, ...items.map((i) => Number(i.value || 0))) || 1;
  const total = items.reduce((s, i) => s + Number(i.value || 0), 0);
  return h('figure', { class: 'chart', dataset: { total: String(total) } },
    title ? h('figcaption', null, h('b', null, title)) : null,
    h('table', null, h('tbody', null, items.map((item, i) => h('tr', null,
      h('td', null, item.label || '(none)'),
      h('td', { style: { width: '50%' } }, h('div', { class: 'bar-h', style: { width: (100 * Number(item.value || 0) / max).toFixed(1) + '%', background: color(i) } })),
      h('td', { class: 'num' }, format(item.value)))))));
}

/** A line chart of one numeric column against another (the SQL page's "as chart"). */
export function columnChart(labels, values, { title, width = 640, height = 220 } = {}) {
  return stackedBars(labels.map((label, i) => ({ bucket: String(label), group: title || 'value', value: Number(values[i]) || 0 })), { title, width, height });
}

function shortBucket(b) {
  const text = String(b);
  return /^\d{4}-\d\d-\d\dT?\s?\d\d:\d\d/.test(text) ? text.slice(5, 16).replace('T', ' ') : text.slice(0, 12);
}

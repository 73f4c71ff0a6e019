// Building DOM from data safely: every value goes in as text (textContent / attributes),
// never as markup. No module of the console uses innerHTML with data.

/** h('a', {href: '#/x', class: 'y', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key === 'href') el.setAttribute('href', safeHref(value));
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Only in-app links (#/...) and same-origin paths; anything else (javascript:, data:) becomes '#'. */
export function safeHref(value) {
  const text = String(value);
  return text.startsWith('#') || (text.startsWith('/') && !text.startsWith('//')) ? text : '#';
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  for (const child of children) {
    if (child === undefined || child === null) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A table from rows of objects: columns [{key, label, num, render(row) -> Node|string}]. */
export function table(columns, rows, { rowClass, onRow } = {}) {
  const head = h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.label)));
  const body = rows.map((row) => h('tr', { class: rowClass ? rowClass(row) : null, onclick: onRow ? () => onRow(row) : null },
    columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.render ? c.render(row) : row[c.key]))));
  return h('table', null, h('thead', null, head), h('tbody', null, body));
}

/** A labelled figure (the totals rows of the feed, trace and costs views); ``raw``, when given, is the
 *  unformatted value in data-value (what tools and tests compare with the API). */
export function kpi(label, value, id, raw) {
  return h('div', { class: 'kpi', id, dataset: raw === undefined || raw === null ? null : { value: String(raw) } }, label, h('b', null, value));
}

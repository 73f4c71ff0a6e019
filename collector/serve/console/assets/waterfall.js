// The trace waterfall and tree. Only the rows in view are in the DOM (plus a small overscan),
// so a 10,000-span trace scrolls like a 10-span one; the tree, depths and subtree sums are
// computed once, in O(n), when the trace arrives.
import { h, clear } from './dom.js';
import { ms, usd, count } from './format.js';

const ROW = 24;
const OVERSCAN = 10;

/** Build the tree once: children in start order, depth, subtree tokens/cost/errors (from the API when it sends them). */
export function buildTree(spans) {
  const byId = new Map();
  const nodes = spans.map((s) => {
    const start = Date.parse(s.start_time) || 0;
    const node = { span: s, id: s.span_id, start, end: start + Number(s.duration_ms || 0), children: [], depth: 0, parent: null,
      tokens: Number(s.input_tokens || 0) + Number(s.output_tokens || 0), cost: Number(s.cost_usd || 0),
      error: /error/i.test(String(s.status || '')) || /error/i.test(String(s.severity || '')) };
    byId.set(node.id, node);
    return node;
  });
  const roots = [];
  for (const node of nodes) {
    const parent = node.span.parent_span_id && byId.get(node.span.parent_span_id);
    if (parent && parent !== node) { node.parent = parent; parent.children.push(node); } else roots.push(node);
  }
  const byStart = (a, b) => a.start - b.start;
  roots.sort(byStart);
  // iterative post-order: deep chains (agents calling agents) must not overflow the stack
  const order = [];
  const stack = roots.map((r) => [r, 0]).reverse();
  while (stack.length) {
    const [node, depth] = stack.pop();
    node.depth = depth;
    order.push(node);
    node.children.sort(byStart);
    for (let i = node.children.length - 1; i >= 0; i--) stack.push([node.children[i], depth + 1]);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    const s = node.span;
    node.subTokens = node.tokens; node.subCost = node.cost; node.subErrors = node.error ? 1 : 0; node.subCount = 1;
    for (const c of node.children) { node.subTokens += c.subTokens; node.subCost += c.subCost; node.subErrors += c.subErrors; node.subCount += c.subCount; }
    if (s.subtree_cost_usd !== undefined) node.subCost = Number(s.subtree_cost_usd);
    if (s.subtree_tokens !== undefined) node.subTokens = Number(s.subtree_tokens);
  }
  const start = Math.min(...nodes.map((n) => n.start).filter(Boolean), Infinity);
  const end = Math.max(...nodes.map((n) => n.end), -Infinity);
  return { roots, order, byId, start: Number.isFinite(start) ? start : 0, span: Math.max(1, end - start) };
}

export class Waterfall {
  constructor(container, spans, { onSelect } = {}) {
    this.tree = buildTree(spans);
    this.collapsed = new Set();
    this.matches = null;
    this.onSelect = onSelect;
    this.selected = null;
    this.viewport = h('div', { class: 'wf', tabindex: '0', role: 'tree', 'aria-label': 'trace waterfall' });
    this.spacer = h('div', { class: 'wf-spacer' });
    this.viewport.appendChild(this.spacer);
    clear(container).append(
      h('div', { class: 'wf-head' }, h('span', null, 'span'), h('span', null, 'timeline'), h('span', { class: 'num' }, 'duration'),
        h('span', { class: 'num' }, 'tokens'), h('span', { class: 'num' }, 'cost'), h('span', { class: 'num' }, 'subtree cost')),
      this.viewport);
    let pending = false;
    this.viewport.addEventListener('scroll', () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; this.render(); });
    });
    this.refresh();
  }

  /** The rows a person can see now: the tree in order, skipping collapsed subtrees. */
  refresh() {
    const rows = [];
    const skip = (node) => this.collapsed.has(node.id);
    const stack = [...this.tree.roots].reverse();
    while (stack.length) {
      const node = stack.pop();
      rows.push(node);
      if (!skip(node)) for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
    }
    this.rows = rows;
    this.spacer.style.height = rows.length * ROW + 'px';
    this.render(true);
  }

  render(force) {
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    if (!force && first === this.first && last === this.last) return;
    this.first = first; this.last = last;
    const fragment = document.createDocumentFragment();
    for (let i = first; i < last; i++) fragment.appendChild(this.row(this.rows[i], i));
    clear(this.spacer).appendChild(fragment);
  }

  row(node, index) {
    const s = node.span;
    const left = ((node.start - this.tree.start) / this.tree.span) * 100;
    const width = Math.max(0.1, ((node.end - node.start) / this.tree.span) * 100);
    const hasChildren = node.children.length > 0;
    const classes = ['wf-row'];
    if (node.error) classes.push('err');
    if (this.matches && this.matches.has(node.id)) classes.push('match');
    if (this.selected === node.id) classes.push('selected');
    const toggle = hasChildren
      ? h('button', { class: 'wf-toggle', type: 'button', 'aria-label': this.collapsed.has(node.id) ? 'expand' : 'collapse',
          onclick: (e) => { e.stopPropagation(); this.toggle(node.id); } }, this.collapsed.has(node.id) ? '▸' : '▾')
      : h('span', { class: 'wf-toggle' });
    return h('div', { class: classes.join(' '), role: 'treeitem', style: { top: index * ROW + 'px' }, dataset: { spanId: s.span_id, index: String(index) },
      'aria-expanded': hasChildren ? String(!this.collapsed.has(node.id)) : null,
      onclick: () => this.select(node.id) },
      h('span', { class: 'wf-name', style: { paddingLeft: node.depth * 14 + 'px' }, title: s.name }, toggle, s.name,
        node.error ? ' ⚠' : '', hasChildren && this.collapsed.has(node.id) ? ` (${node.subCount - 1} hidden)` : ''),
      h('span', { class: 'wf-track' }, h('span', { class: 'wf-bar', style: { left: left.toFixed(3) + '%', width: width.toFixed(3) + '%' } })),
      h('span', { class: 'num' }, ms(s.duration_ms)),
      h('span', { class: 'num' }, node.tokens ? count(node.tokens) : ''),
      h('span', { class: 'num' }, node.cost ? usd(s.cost_usd) : ''),
      h('span', { class: 'num', title: `${count(node.subTokens)} tokens in this subtree` }, node.subCost ? usd(node.subCost) : ''));
  }

  toggle(id) {
    if (this.collapsed.has(id)) this.collapsed.delete(id); else this.collapsed.add(id);
    this.refresh();
  }

  expandAll() { this.collapsed.clear(); this.refresh(); }

  collapseAll() {
    for (const node of this.tree.order) if (node.children.length && node.depth >= 1) this.collapsed.add(node.id);
    this.refresh();
  }

  select(id) {
    this.selected = id;
    this.render(true);
    if (this.onSelect) this.onSelect(this.tree.byId.get(id).span);
  }

  /** Mark spans whose name, id or attributes contain text; open their ancestors; scroll to the first. Returns how many. */
  search(text) {
    const needle = String(text || '').trim().toLowerCase();
    if (!needle) { this.matches = null; this.refresh(); return 0; }
    this.matches = new Set();
    for (const node of this.tree.order) {
      const s = node.span;
      const hay = [s.name, s.span_id, s.type, s.agent, s.model, s.operation, s.status].join(' ').toLowerCase();
      if (hay.includes(needle)) {
        this.matches.add(node.id);
        for (let p = node.parent; p; p = p.parent) this.collapsed.delete(p.id);
      }
    }
    this.refresh();
    const index = this.rows.findIndex((n) => this.matches.has(n.id));
    if (index >= 0) { this.viewport.scrollTop = Math.max(0, index * ROW - 2 * ROW); this.render(true); }
    return this.matches.size;
  }
}

// One trace: totals, a virtualized waterfall/tree with search and collapse, and the selected span.
import { api } from '../api.js';
import { h, kpi } from '../dom.js';
import { formatTime, usd, count, ms } from '../format.js';
import { Waterfall } from '../waterfall.js';

export async function render(main, ctx) {
  const traceId = ctx.arg;
  if (!traceId) { main.append(h('h1', null, 'Trace'), h('p', { class: 'muted' }, 'Open a trace from the feed, or search for its id.')); return; }
  const started = performance.now();
  const trace = await api.trace(traceId);
  ctx.rememberTimeZone(trace);
  if (!trace.spans.length) { main.append(h('h1', null, 'Trace ', traceId), h('p', { class: 'error' }, 'No spans for this trace id (in what your token may see).')); return; }
  const detail = h('aside', { class: 'card', id: 'span-detail' }, h('p', { class: 'muted' }, 'Click a span to see its details.'));
  const box = h('div', { id: 'waterfall' });
  const searchInput = h('input', { type: 'search', id: 'trace-search', placeholder: 'find span by name, id, agent, model', value: ctx.params.q || '', size: 32 });
  const found = h('span', { class: 'muted', id: 'trace-found' });
  const totalsBox = h('div', { class: 'totals', id: 'trace-totals' });
  main.append(h('h1', null, 'Trace ', h('code', null, traceId)), totalsBox,
    trace.truncated ? h('p', { class: 'error', id: 'trace-truncated' }, `This trace has more spans than the API returns at once; showing the first ${count(trace.spans.length)}.`) : null,
    h('div', { class: 'toolbar' }, h('label', null, 'search', searchInput), found,
      h('button', { type: 'button', id: 'expand-all', onclick: () => wf.expandAll() }, 'Expand all'),
      h('button', { type: 'button', id: 'collapse-all', onclick: () => wf.collapseAll() }, 'Collapse all')),
    box, detail);
  const wf = new Waterfall(box, trace.spans, { onSelect: (span) => showSpan(detail, span, ctx) });
  const t = wf.tree;
  const rootCost = t.roots.reduce((s, r) => s + r.subCost, 0);
  const rootTokens = t.roots.reduce((s, r) => s + r.subTokens, 0);
  const errors = t.roots.reduce((s, r) => s + r.subErrors, 0);
  totalsBox.append(kpi('spans', count(trace.spans.length), 'trace-spans'), kpi('duration', ms(t.span), 'trace-duration'),
    kpi('tokens', count(rootTokens), 'trace-tokens'), kpi('cost', usd(rootCost), 'trace-cost'), kpi('errors', count(errors), 'trace-errors'),
    kpi('started', formatTime(new Date(t.start).toISOString()), 'trace-start'));
  const runSearch = () => {
    ctx.setParams({ q: searchInput.value });
    const n = wf.search(searchInput.value);
    found.textContent = searchInput.value ? `${n} match${n === 1 ? '' : 'es'}` : '';
  };
  searchInput.addEventListener('change', runSearch);
  if (searchInput.value) runSearch();
  main.dataset.renderMs = String(Math.round(performance.now() - started));
}

function showSpan(detail, span, ctx) {
  detail.replaceChildren(h('h2', null, span.name),
    h('dl', { class: 'kv' }, [['span', span.span_id], ['parent', span.parent_span_id], ['type', span.type], ['agent', span.agent], ['model', span.model],
      ['status', span.status], ['start', formatTime(span.start_time)], ['duration', ms(span.duration_ms)],
      ['tokens in / out', `${count(span.input_tokens)} / ${count(span.output_tokens)}`], ['cost', usd(span.cost_usd)]]
      .filter(([, v]) => v !== undefined && v !== '').flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
    h('a', { href: ctx.href('activity', span.span_id) }, 'attributes, events and content →'));
}

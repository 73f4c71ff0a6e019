// One activity (GET /v1/activities/{id}?include_chain=true): what it was, its attributes, events and
// captured content, its ancestors (root first) and what ran below it.
import { api } from '../api.js';
import { h, table } from '../dom.js';
import { formatTime, usd, count, ms } from '../format.js';

export async function render(main, ctx) {
  const { activity: a, ancestors, descendants } = await api.activity(ctx.arg);
  const link = (c) => h('li', null, h('a', { href: ctx.href('activity', c.span_id) }, c.name), ' ', h('span', { class: 'muted' }, c.type || ''), ' ',
    usd(c.cost_usd), c.status === 'error' || c.status === 'failed' ? h('span', { class: 'status-error' }, ' ' + c.status) : null);
  main.append(h('h1', null, a.name || ctx.arg),
    h('p', null, h('a', { href: ctx.href('trace', a.trace_id), id: 'to-trace' }, 'open its trace →')),
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', null, 'Activity'), kv([
        ['type', a.type], ['agent', a.agent], ['service', a.service], ['operation', a.operation], ['model', a.model], ['provider', a.provider],
        ['status', a.status], ['status message', a.status_message], ['severity', a.severity], ['kind', a.span_kind], ['start', formatTime(a.start_time)], ['duration', ms(a.duration_ms)],
        ['input tokens', count(a.input_tokens)], ['output tokens', count(a.output_tokens)], ['cache read', count(a.cache_read_tokens)],
        ['reasoning', count(a.reasoning_tokens)], ['cost', usd(a.cost_usd)], ['cost source', a.cost_source],
        ['user', a.user_id], ['session', a.session_id], ['project', a.project_id], ['ticket', a.ticket_id], ['conversation', a.conversation_id],
        ['environment', a.environment], ['trace', a.trace_id], ['span', a.span_id], ['parent', a.parent_span_id]])),
      h('section', { class: 'card', id: 'activity-chain' }, h('h2', null, 'Chain (root → this)'),
        ancestors.length ? null : h('p', { class: 'muted' }, 'no parent: this is a root activity'),
        h('ol', null, ancestors.map(link), h('li', { class: 'current', 'aria-current': 'true' }, h('b', null, a.name), ' ', h('span', { class: 'muted' }, a.type || ''), ' ', usd(a.cost_usd))),
        descendants.length ? [h('h3', null, `Below it (${descendants.length})`), h('ol', { id: 'activity-descendants' }, descendants.slice(0, 200).map(link))] : null,
        descendants.length > 200 ? h('p', { class: 'muted' }, `and ${descendants.length - 200} more: open the trace`) : null),
      h('section', { class: 'card', id: 'activity-attributes' }, h('h2', null, 'Attributes'), kv(Object.entries(a.attributes || {}))),
      h('section', { class: 'card' }, h('h2', null, 'Resource'), kv(Object.entries(a.resource || {}))),
      h('section', { class: 'card' }, h('h2', null, 'Events'), (a.events || []).length
        ? table([{ label: 'time', render: (e) => formatTime(e.timestamp || e.time) }, { label: 'name', key: 'name' },
          { label: 'attributes', render: (e) => JSON.stringify(e.attributes || {}) }], a.events)
        : h('p', { class: 'muted' }, 'no events')),
      (a.links || []).length ? h('section', { class: 'card', id: 'activity-links' }, h('h2', null, 'Links'), table([
        { label: 'trace', render: (l) => h('a', { href: ctx.href('trace', l.trace_id) }, String(l.trace_id).slice(0, 12)) },
        { label: 'span', render: (l) => h('a', { href: ctx.href('activity', l.span_id) }, l.span_id) },
        { label: 'attributes', render: (l) => JSON.stringify(l.attributes || {}) }], a.links)) : null,
      h('section', { class: 'card', id: 'activity-content' }, h('h2', null, 'Captured content'), contentOf(a))));
}

function contentOf(a) {
  const content = a.content;
  if (!content || (typeof content === 'object' && !Object.keys(content).length)) return h('p', { class: 'muted' }, 'none captured (content capture may be off)');
  if (typeof content === 'string') return h('pre', null, content);
  return Object.entries(content).map(([k, v]) => [h('h3', null, k), h('pre', null, typeof v === 'string' ? v : JSON.stringify(v, null, 2))]);
}

function kv(entries) {
  const shown = entries.filter(([, v]) => v !== undefined && v !== null && v !== '' && v !== '0');
  if (!shown.length) return h('p', { class: 'muted' }, 'none');
  return h('dl', { class: 'kv' }, shown.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, typeof v === 'object' ? JSON.stringify(v) : v)]));
}

// Timelines: a conversation in sequence order, a project's actions, a ticket's history, a session's
// events (the timeline reports; their times are already in the deployment's zone). Paged: "more".
import { api } from '../api.js';
import { h } from '../dom.js';
import { formatTime, usd, count, ms } from '../format.js';

const KINDS = {
  conversation: ['Conversation', api.conversation],
  project: ['Project timeline', api.projectTimeline],
  ticket: ['Ticket history', api.ticketHistory],
  session: ['Session', api.session],
};

export async function render(main, ctx) {
  const kind = KINDS[ctx.params.kind] ? ctx.params.kind : 'conversation';
  const id = ctx.arg || '';
  const select = h('select', { name: 'kind', id: 'timeline-kind' }, Object.entries(KINDS).map(([k, [label]]) => h('option', { value: k, selected: k === kind }, label)));
  const input = h('input', { name: 'id', id: 'timeline-id', value: id, placeholder: 'id', size: 28 });
  const form = h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); ctx.navigate('timeline', input.value.trim(), { ...ctx.params, kind: select.value }); } },
    select, input, h('button', { type: 'submit' }, 'Show'));
  main.append(h('h1', null, KINDS[kind][0]), form);
  if (!id) { main.append(h('p', { class: 'muted' }, 'Pick what to follow and paste its id.')); return; }
  const entries = [];
  const summary = h('p', { id: 'timeline-summary' });
  const list = h('ol', { class: 'timeline', id: 'timeline-list' });
  const more = h('button', { type: 'button', id: 'timeline-more', hidden: true }, 'More');
  main.append(summary, list, more);
  let cursor = null;
  const load = async () => {
    const page = await KINDS[kind][1](id, cursor ? { cursor } : {});
    ctx.rememberTimeZone(page);
    cursor = page.next_cursor;
    entries.push(...page.entries);
    list.append(...page.entries.map((e) => item(e, ctx)));
    more.hidden = !cursor;
    const tokens = entries.reduce((s, e) => s + (e.tokens || 0), 0);
    const cost = entries.reduce((s, e) => s + Number(e.cost_usd || 0), 0);
    summary.textContent = entries.length
      ? `${entries.length}${cursor ? '+' : ''} entries · ${count(tokens)} tokens` + (kind === 'conversation' ? '' : ` · ${usd(cost)}`)
      : 'Nothing recorded for this id (in what your token may see).';
  };
  more.addEventListener('click', () => load().catch((error) => { summary.textContent = error.message; }));
  await load();
}

function item(e, ctx) {
  return h('li', null,
    h('span', { class: 'when' }, e.sequence !== null ? '#' + e.sequence + ' ' : '', formatTime(e.time)), ' ',
    h('a', { href: ctx.href('activity', e.span_id) }, e.name || e.type || e.span_id), ' ',
    h('span', { class: 'muted' }, [e.type, e.agent, e.tool, e.status].filter(Boolean).join(' · ')), ' ',
    e.detail ? h('span', { class: 'detail' }, e.detail, ' ') : null,
    e.duration_ms ? ms(e.duration_ms) + ' ' : '', e.tokens ? count(e.tokens) + ' tok ' : '',
    e.cost_usd && Number(e.cost_usd) ? usd(e.cost_usd) : '');
}

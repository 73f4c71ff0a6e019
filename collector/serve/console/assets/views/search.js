// Search by any id: a trace or span id opens directly; otherwise offer what the id could be.
import { api, ApiError } from '../api.js';
import { h } from '../dom.js';

export async function render(main, ctx) {
  const id = ctx.arg.trim();
  main.append(h('h1', null, 'Search ', h('code', null, id)));
  if (/^[0-9a-f]{32}$/i.test(id)) {
    const trace = await tryCall(() => api.trace(id));
    if (trace && trace.spans.length) { ctx.navigate('trace', id); return; }
  }
  if (/^[0-9a-f]{16}$/i.test(id)) {
    const activity = await tryCall(() => api.activity(id));
    if (activity) { ctx.navigate('activity', id); return; }
  }
  main.append(h('p', null, 'Not a trace or span id this token can see. Follow it as:'),
    h('ul', { id: 'search-links' },
      h('li', null, h('a', { href: ctx.href('trace', id) }, 'a trace')),
      h('li', null, h('a', { href: ctx.href('activity', id) }, 'a span')),
      h('li', null, h('a', { href: ctx.href('timeline', id, { kind: 'ticket' }) }, 'a ticket (history)')),
      h('li', null, h('a', { href: ctx.href('timeline', id, { kind: 'project' }) }, 'a project (timeline)')),
      h('li', null, h('a', { href: ctx.href('feed', '', { user: id }) }, 'a user (their activities)')),
      h('li', null, h('a', { href: ctx.href('timeline', id, { kind: 'session' }) }, 'a session')),
      h('li', null, h('a', { href: ctx.href('timeline', id, { kind: 'conversation' }) }, 'a conversation'))));
}

async function tryCall(call) {
  try { return await call(); } catch (error) { if (error instanceof ApiError && error.status === 401) throw error; return null; }
}

// The console shell: sign-in, theme, time range, time zone, search and the view router.
// Views are modules with render(main, ctx) -> optional cleanup; the URL hash says which one.
import { api, ApiError, token } from './api.js';
import { h, clear } from './dom.js';
import { current, href, navigate, setParams } from './state.js';
import { setTimeZone, timeZone, rangeSince } from './format.js';

const VIEWS = {
  feed: ['Live feed', () => import('./views/feed.js')],
  trace: ['Trace', () => import('./views/trace.js'), true],
  activity: ['Activity', () => import('./views/activity.js'), true],
  timeline: ['Timelines', () => import('./views/timeline.js')],
  costs: ['Costs', () => import('./views/dashboard.js')],
  agents: ['Agents', () => import('./views/agents.js')],
  sql: ['SQL', () => import('./views/sql.js')],
  search: ['Search', () => import('./views/search.js'), true],
};

const main = document.getElementById('view');
const banner = document.getElementById('banner');
let cleanup = null;
let generation = 0;

export function showBanner(text, isError) {
  banner.hidden = !text;
  banner.textContent = text || '';
  banner.className = 'banner' + (isError ? ' error' : '');
}

function rememberTimeZone(payload) { if (payload && payload.time_zone) { setTimeZone(payload.time_zone); paintTimeZone(); } }
function paintTimeZone() { document.getElementById('tz').textContent = 'time zone: ' + timeZone(); }

async function route() {
  const state = current();
  const entry = VIEWS[state.view] || VIEWS.feed;
  const view = VIEWS[state.view] ? state.view : 'feed';
  for (const link of document.querySelectorAll('#nav a')) link.classList.toggle('active', link.dataset.view === view);
  const range = state.params.range || localStorage.getItem('spanledger.range') || '24h';
  document.getElementById('range').value = range;
  if (cleanup) { try { cleanup(); } catch { /* a view's teardown must not break navigation */ } cleanup = null; }
  const mine = ++generation;
  clear(main).appendChild(h('p', { class: 'muted' }, 'Loading…'));
  const ctx = { ...state, view, range, since: rangeSince(range), setParams, href, navigate, rememberTimeZone, showBanner, errorBox,
    isCurrent: () => mine === generation };
  try {
    const module = await entry[1]();
    if (mine !== generation) return;
    // each render gets its own box: a slow view finishing after the user moved on writes into
    // a detached box, never into the next view, and its feed or timers are stopped at once
    const box = h('div', { class: 'view-box' });
    clear(main).appendChild(box);
    document.title = entry[0] + ' · spanledger';
    const stop = (await module.render(box, ctx)) || null;
    if (mine !== generation) { if (stop) stop(); return; }
    cleanup = stop;
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof ApiError && error.status === 401) { askToken('That token was refused: ' + error.message); return; }
    clear(main).appendChild(errorBox(error));
  }
}

export function errorBox(error) {
  if (error instanceof ApiError && error.missing) {
    return h('p', { class: 'error', role: 'alert' }, `This collector does not serve ${error.path.split('?')[0]} yet, so this view is empty. Upgrade the collector, or use the SQL page meanwhile.`);
  }
  return h('p', { class: 'error', role: 'alert' }, String(error.message || error));
}

function askToken(message) {
  const dialog = document.getElementById('signin');
  document.getElementById('signin-error').textContent = message || '';
  if (!dialog.open) dialog.showModal();
  document.getElementById('token').focus();
}

/** Is a token needed, and does ours work? Also learns the deployment's time zone (every read answer names it). */
async function probe() {
  try {
    rememberTimeZone(await api.activities({ limit: 1 }));
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return false;
    return true; // any other answer means we are through auth (a refused function, a store not ready yet)
  }
}

function setupChrome() {
  const nav = document.getElementById('nav');
  for (const [name, [label, , hidden]] of Object.entries(VIEWS)) {
    if (!hidden) nav.appendChild(h('a', { href: '#/' + name, dataset: { view: name } }, label));
  }
  const theme = localStorage.getItem('spanledger.theme') || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  document.documentElement.dataset.theme = theme;
  document.getElementById('theme').addEventListener('click', () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('spanledger.theme', next);
  });
  document.getElementById('range').value = current().params.range || localStorage.getItem('spanledger.range') || '24h';
  document.getElementById('range').addEventListener('change', (event) => {
    localStorage.setItem('spanledger.range', event.target.value);
    setParams({ range: event.target.value });
    route();
  });
  document.getElementById('search').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = document.getElementById('search-input').value.trim();
    if (value) navigate('search', value);
  });
  document.getElementById('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    token.set(document.getElementById('token').value);
    document.getElementById('token').value = '';
    if (await probe()) {
      document.getElementById('signin').close();
      document.getElementById('signout').hidden = false;
      route();
    } else {
      token.clear();
      askToken('That token was refused; check it and paste it again.');
    }
  });
  // Escape must not leave a user with no way to sign in: the dialog stays until a token works
  document.getElementById('signin').addEventListener('cancel', (event) => event.preventDefault());
  document.getElementById('signout').addEventListener('click', () => { token.clear(); location.reload(); });
  addEventListener('hashchange', route);
  paintTimeZone();
}

async function start() {
  setupChrome();
  // the view and the probe run side by side: a view's own 401 also opens the sign-in dialog
  route();
  const signedIn = await probe();
  document.body.dataset.probed = '1'; // tests and tools: sign-in state and time zone are known
  if (signedIn) {
    document.getElementById('signout').hidden = !token.get();
  } else {
    token.clear();
    if (cleanup) { try { cleanup(); } catch { /* teardown */ } cleanup = null; }
    generation++;
    clear(main).appendChild(h('p', { class: 'muted' }, 'Sign in to see this collector\'s data.'));
    askToken('');
  }
}

start();

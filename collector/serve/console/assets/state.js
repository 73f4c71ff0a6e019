// Every view and filter lives in the URL hash (#/view/arg?filter=value), so any screen can be
// shared by copying the address. The token never goes here.

export function current() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, search = ''] = hash.split('?');
  const [view, ...rest] = path.split('/').map((part) => { try { return decodeURIComponent(part); } catch { return part; } });
  return { view: view || 'feed', arg: rest.join('/'), params: Object.fromEntries(new URLSearchParams(search)) };
}

export function href(view, arg, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) if (value !== undefined && value !== null && value !== '') search.set(key, value);
  const text = search.toString();
  return '#/' + encodeURIComponent(view) + (arg ? '/' + encodeURIComponent(arg) : '') + (text ? '?' + text : '');
}

export function navigate(view, arg, params) { location.hash = href(view, arg, params); }

/** Change filters of the current view without adding a history entry per keystroke. */
export function setParams(patch) {
  const { view, arg, params } = current();
  const next = { ...params, ...patch };
  history.replaceState(null, '', href(view, arg, next));
  return next;
}

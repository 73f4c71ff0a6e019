// Numbers, money and times as people read them. Costs arrive as decimal strings and stay exact
// where they are shown one by one; sums use Number (display precision only).

let zone = 'UTC';
export function setTimeZone(name) { if (name) zone = name; }
export function timeZone() { return zone; }

export function formatTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  try {
    return date.toLocaleString('sv-SE', { timeZone: zone, hour12: false }) + '.' + String(date.getUTCMilliseconds()).padStart(3, '0');
  } catch { return date.toISOString(); }
}

export function usd(value) {
  if (value === null || value === undefined || value === '') return '—';
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (n === 0) return '$0';
  if (Math.abs(n) < 0.01) return '$' + n.toPrecision(3);
  return '$' + n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 4 });
}

export function count(value) {
  const n = Number(value || 0);
  return Number.isFinite(n) ? n.toLocaleString('en-US') : String(value);
}

export function ms(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return '';
  if (n >= 60000) return (n / 60000).toFixed(1) + ' min';
  if (n >= 1000) return (n / 1000).toFixed(2) + ' s';
  return n.toFixed(n < 10 ? 2 : 0) + ' ms';
}

export function tokensOf(a) { return Number(a.input_tokens || 0) + Number(a.output_tokens || 0); }

/** since= for a range name ('1h', '7d', 'all'), as ISO UTC. */
export function rangeSince(range, now = Date.now()) {
  const match = /^(\d+)([mhd])$/.exec(range || '');
  if (!match) return null;
  const unit = { m: 60e3, h: 3600e3, d: 86400e3 }[match[2]];
  return new Date(now - Number(match[1]) * unit).toISOString();
}

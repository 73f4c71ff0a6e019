// Numbers, money and times as people read them. Costs arrive as decimal strings and stay exact
// where they are shown one by one; sums use Number (display precision only).

let zone = 'UTC';
export function setTimeZone(name) { if (name) zone = name; }
export function timeZone() { return zone; }

// what the reports send: 'YYYY-MM-DD hh:mm:ss[.fraction]', already in the deployment's zone
const ZONED = /^(\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?)(\.\d{1,3})?\d*$/;

export function formatTime(iso) {
  if (!iso) return '';
  const zoned = ZONED.exec(String(iso));
  if (zoned) return zoned[1] + (zoned[2] || '');
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

/** since= for a range name ('1h', '7d', 'all'), as ISO UTC.  Ranges of a day or more start on the
 *  whole hour (up to 59 minutes earlier): the reports then answer from the hourly rollup, which only
 *  counts whole hours, instead of scanning raw spans (measured at 1M spans: 68 vs 135+ ms a question). */
export function rangeSince(range, now = Date.now()) {
  const match = /^(\d+)([mhd])$/.exec(range || '');
  if (!match) return null;
  const unit = { m: 60e3, h: 3600e3, d: 86400e3 }[match[2]];
  const span = Number(match[1]) * unit;
  const since = now - span;
  return new Date(span >= 86400e3 ? Math.floor(since / 3600e3) * 3600e3 : since).toISOString();
}

/** The exact sum of decimal strings ('0.0025', '12.5'), as a decimal string: what a chart's total
 *  is checked against (floating-point sums of money drift). Values that are not decimals count as 0. */
export function sumDecimal(values) {
  let scale = 0;
  const parts = [];
  for (const value of values) {
    const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(String(value ?? '').trim());
    if (!match || (!match[2] && !match[3])) continue;
    parts.push(match);
    scale = Math.max(scale, (match[3] || '').length);
  }
  let total = 0n;
  for (const [, sign, whole, fraction = ''] of parts) {
    const units = BigInt((whole || '0') + fraction.padEnd(scale, '0'));
    total += sign ? -units : units;
  }
  const negative = total < 0n;
  const digits = (negative ? -total : total).toString().padStart(scale + 1, '0');
  let text = scale ? digits.slice(0, -scale) + '.' + digits.slice(-scale) : digits;
  if (scale) text = text.replace(/0+$/, '').replace(/\.$/, '');
  return (negative ? '-' : '') + text;
}

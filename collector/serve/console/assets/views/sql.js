// The SQL page: any read-only SELECT through POST /v1/sql (its limits, its tenant scoping),
// the answer as a table and as a chart. The query text is kept in the URL so it can be shared.
import { api } from '../api.js';
import { h, clear, table } from '../dom.js';
import { columnChart } from '../charts.js';

const EXAMPLE = `SELECT Model, count() AS calls, sum(InputTokens + OutputTokens) AS tokens, sum(TotalCost) AS usd
FROM spanledger.otel_traces
WHERE Timestamp > now() - INTERVAL 1 DAY
GROUP BY Model
ORDER BY usd DESC
LIMIT 20`;

export async function render(main, ctx) {
  const editor = h('textarea', { id: 'sql-text', spellcheck: 'false', 'aria-label': 'SQL query' });
  editor.value = ctx.params.q || EXAMPLE;
  const params = h('input', { id: 'sql-params', size: 50, placeholder: '{"name": "value"} for {name:String} placeholders', value: ctx.params.p || '' });
  const status = h('p', { id: 'sql-status', class: 'muted', role: 'status' });
  const output = h('div', { id: 'sql-output' });
  const run = async () => {
    ctx.setParams({ q: editor.value, p: params.value });
    status.className = 'muted';
    status.textContent = 'running…';
    clear(output);
    let parameters = {};
    try { parameters = params.value.trim() ? JSON.parse(params.value) : {}; } catch {
      status.className = 'error'; status.textContent = 'parameters must be a JSON object, like {"model": "gpt-4o"}'; return;
    }
    try {
      const result = await api.sql(editor.value, parameters);
      status.textContent = `${result.rows.length} row${result.rows.length === 1 ? '' : 's'} in ${result.elapsed_ms} ms`;
      showResult(output, result);
    } catch (error) {
      status.className = 'error';
      status.textContent = 'Refused: ' + error.message;
    }
  };
  main.append(h('h1', null, 'SQL'),
    h('p', { class: 'muted' }, 'Read-only: SELECT over spanledger.otel_traces and its rollups, limited and scoped to your token by the collector.'),
    editor, h('div', { class: 'toolbar' }, h('label', null, 'parameters', params),
      h('button', { type: 'button', id: 'sql-run', onclick: run }, 'Run (Ctrl+Enter)')), status, output);
  editor.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  if (ctx.params.q) run();
}

function showResult(output, result) {
  const columns = result.columns.map((name, i) => ({ label: name, num: /Int|Float|Decimal/.test(result.types[i] || ''), render: (row) => cell(row[i]) }));
  const numeric = result.columns.map((_, i) => i).filter((i) => /Int|Float|Decimal/.test(result.types[i] || ''));
  const chartBox = h('div', { id: 'sql-chart' });
  if (numeric.length && result.rows.length) {
    const labelIndex = result.columns.findIndex((_, i) => !numeric.includes(i));
    const pick = h('select', { id: 'sql-chart-column', 'aria-label': 'column to chart' }, numeric.map((i) => h('option', { value: i }, result.columns[i])));
    const draw = () => {
      const i = Number(pick.value);
      const labels = result.rows.map((row, n) => (labelIndex >= 0 ? row[labelIndex] : n + 1));
      chartBox.replaceChildren(columnChart(labels, result.rows.map((row) => row[i]), { title: result.columns[i] }));
    };
    pick.addEventListener('change', draw);
    output.append(h('div', { class: 'toolbar' }, h('label', null, 'chart', pick)));
    draw();
  }
  output.append(chartBox, h('div', { class: 'card', id: 'sql-table' }, table(columns, result.rows)));
}

function cell(value) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, 'NULL');
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

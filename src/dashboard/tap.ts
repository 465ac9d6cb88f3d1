// The tap view: a filter form and the live requests of GET
// /apis/telemetry/v1/tap as rows. The view is built once and kept (a re-render
// of the page re-attaches the same element), so rows and the open stream survive
// the other views' polling. Closing the stream stops the tap on the proxies.
import { readSse } from './api.js';
import { win, type El, type InputEl, type TableSectionEl } from './dom.js';
import { fmtMs, parseTapEvent, type TapEvent } from './telemetry-model.js';

/** Rows kept on screen: the newest first, the oldest dropped past this. */
const MAX_ROWS = 500;

export interface TapView {
  readonly element: El;
  /** Fills the service list (namespace/name of the declared services). */
  setServices(services: readonly string[]): void;
}

function el(tag: string, attrs: Record<string, string> = {}, ...children: (El | string)[]): El {
  const e = win.document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(typeof c === 'string' ? win.document.createTextNode(c) : c);
  return e;
}

function statusTone(status: number): string {
  return status >= 500 || status === 0 ? 'bad' : status >= 400 ? 'warn' : 'ok';
}

export function createTapView(): TapView {
  const service = el('select', { id: 'tap-service', 'aria-label': 'service' }) as InputEl;
  const path = el('input', { id: 'tap-path', type: 'text', placeholder: 'path prefix, e.g. /api', 'aria-label': 'path prefix', autocomplete: 'off' }) as InputEl;
  const method = el('select', { id: 'tap-method', 'aria-label': 'method' }) as InputEl;
  for (const m of ['', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) method.append(el('option', { value: m }, m === '' ? 'any method' : m));
  const start = el('button', { type: 'submit', id: 'tap-start', class: 'primary' }, 'Start');
  const clear = el('button', { type: 'button', id: 'tap-clear' }, 'Clear');
  const status = el('span', { id: 'tap-status', class: 'muted', role: 'status' }, 'stopped');
  const form = el('form', { class: 'toolbar tapform', id: 'tap-form' },
    el('label', {}, 'Service ', service), el('label', {}, 'Path ', path), el('label', {}, 'Method ', method), start, clear, status);
  const body = el('tbody', { id: 'tap-rows' }) as TableSectionEl;
  const table = el('table', { class: 'tap' },
    el('thead', {}, el('tr', {}, ...['time', 'proxy', 'dir', 'method', 'authority', 'path', 'status', 'flags', 'latency', 'source → destination', 'request id'].map((c) => el('th', {}, c)))),
    body);
  const element = el('section', { id: 'view-tap' }, el('h2', {}, 'Tap: live requests'), el('div', { class: 'panel' }, form, el('div', { class: 'tapwrap' }, table)));

  let abort: AbortController | undefined;
  let count = 0;
  const setStatus = (text: string, tone = 'muted'): void => {
    status.textContent = text;
    status.className = tone;
  };

  const addRow = (e: TapEvent): void => {
    count++;
    const t = Date.parse(e.time);
    const row = el('tr', { 'data-tap-row': String(count), 'data-path': e.path, 'data-status': String(e.status) },
      el('td', { class: 'mono' }, Number.isNaN(t) ? e.time : new Date(t).toISOString().slice(11, 23)),
      el('td', { class: 'mono', title: e.proxy }, e.proxy.split('~').slice(-2).join('~')),
      el('td', {}, e.direction),
      el('td', {}, e.method),
      el('td', { class: 'mono' }, e.authority),
      el('td', { class: 'mono' }, e.path),
      el('td', {}, el('span', { class: `badge ${statusTone(e.status)}` }, String(e.status))),
      el('td', { class: 'mono' }, e.flags === '' || e.flags === '-' ? '' : e.flags),
      el('td', { class: 'right' }, fmtMs(e.durationMs)),
      el('td', { class: 'mono' }, `${e.source || '?'} → ${e.destination || '?'}`),
      el('td', { class: 'mono muted', title: e.traceId ? `trace ${e.traceId}` : '' }, e.requestId),
    );
    body.prepend(row);
    while (body.rows.length > MAX_ROWS && body.lastElementChild !== null) body.removeChild(body.lastElementChild);
  };

  const stop = (why: string): void => {
    abort?.abort();
    abort = undefined;
    start.textContent = 'Start';
    setStatus(why);
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (abort !== undefined) {
      stop(`paused after ${count} requests`);
      return;
    }
    const [ns, name] = service.value.includes('/') ? service.value.split('/', 2) as [string, string] : ['default', service.value];
    if (!name) {
      setStatus('pick a service', 'bad');
      return;
    }
    const q = new URLSearchParams({ service: name, namespace: ns });
    if (path.value.trim() !== '') q.set('path', path.value.trim());
    if (method.value !== '') q.set('method', method.value);
    const mine = new AbortController();
    abort = mine;
    start.textContent = 'Pause';
    setStatus('connecting…');
    void readSse(`/apis/telemetry/v1/tap?${q.toString()}`, mine.signal, (event, data) => {
      if (event !== 'message' && event !== 'tap') return;
      try {
        const e = parseTapEvent(JSON.parse(data));
        if (e !== undefined) addRow(e);
      } catch {
        // a line that is not JSON: skip it, keep the stream
      }
    }, () => setStatus(`streaming ${ns}/${name}…`, 'ok')).then(
      () => {
        if (abort === mine) stop('the control plane ended the tap');
      },
      (err: unknown) => {
        if (abort === mine) stop(`tap failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  });
  clear.addEventListener('click', () => {
    body.replaceChildren();
    count = 0;
    if (abort === undefined) setStatus('stopped');
  });

  let known = '';
  return {
    element,
    setServices(services) {
      const text = services.join('|');
      if (text === known) return;
      known = text;
      const current = service.value;
      service.replaceChildren(...services.map((s) => el('option', { value: s }, s)));
      if (services.includes(current)) service.value = current;
    },
  };
}

// The dashboard's HTTP client: JSON reads and the ndjson watch stream, with an
// optional admin token (needed only when the page is opened from a non-loopback
// address; kept in sessionStorage, never in the URL).
import { win } from './dom.js';
import type { WatchLine } from './model.js';

const TOKEN_KEY = 'weft.token';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  try {
    return win.sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(t: string | null): void {
  if (t === null || t === '') win.sessionStorage.removeItem(TOKEN_KEY);
  else win.sessionStorage.setItem(TOKEN_KEY, t);
}

function headers(): Record<string, string> {
  const t = token();
  return t === null ? { accept: 'application/json' } : { accept: 'application/json', authorization: `Bearer ${t}` };
}

async function failure(res: Response): Promise<HttpError> {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { message?: unknown };
    if (typeof body.message === 'string') msg = `${res.status}: ${body.message}`;
  } catch {
    // not a Status body
  }
  return new HttpError(res.status, msg);
}

/** GET a JSON document; HttpError for any non-2xx. */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { headers: headers(), ...(signal ? { signal } : {}) });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** GET that answers undefined on 404 (an endpoint this control plane does not serve). */
export async function getOptionalJson<T>(path: string, signal?: AbortSignal): Promise<T | undefined> {
  const res = await fetch(path, { headers: headers(), ...(signal ? { signal } : {}) });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export interface WatchHandlers {
  /** A stream is about to start: `resume` is the revision it resumes from (undefined: a full list follows). */
  onStart(resume: string | undefined): void;
  onLine(line: WatchLine): void;
  /** Connection state for the status badge. */
  onState(state: 'connecting' | 'live' | 'retrying' | 'unauthorized', detail?: string): void;
  /** The revision to resume from after a drop (the newest one seen). */
  resumeFrom(): string | undefined;
}

/**
 * Follows `path` (an ndjson watch) forever: reads lines as they arrive and, when
 * the stream ends or fails, reconnects with exponential backoff (0.5 s doubling
 * to 15 s, with jitter), resuming from the newest revision seen; a 410 (revision
 * compacted) restarts with a full list. Returns a stop function.
 */
export function follow(path: string, h: WatchHandlers): () => void {
  const abort = new AbortController();
  let attempt = 0;
  let stopped = false;
  let wake: (() => void) | undefined;

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  const once = async (resume: string | undefined): Promise<'ended' | 'gone'> => {
    h.onState('connecting');
    const url = resume === undefined ? path : `${path}${path.includes('?') ? '&' : '?'}resourceVersion=${encodeURIComponent(resume)}`;
    const res = await fetch(url, { headers: headers(), signal: abort.signal });
    if (res.status === 410) {
      await res.body?.cancel();
      return 'gone';
    }
    if (!res.ok || res.body === null) throw await failure(res);
    h.onStart(resume);
    h.onState('live');
    attempt = 0;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const text = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (text !== '') h.onLine(JSON.parse(text) as WatchLine);
      }
    }
    return 'ended';
  };

  void (async () => {
    let resume: string | undefined;
    while (!stopped) {
      try {
        const how = await once(resume);
        resume = how === 'gone' ? undefined : h.resumeFrom();
        if (how === 'gone') continue;
      } catch (e) {
        if (stopped) return;
        if (e instanceof HttpError && (e.status === 401 || e.status === 403)) {
          h.onState('unauthorized', e.message);
          // Wait for a token (retry() wakes us) or try again slowly.
          await pause(30_000);
          continue;
        }
        resume = h.resumeFrom();
        h.onState('retrying', e instanceof Error ? e.message : String(e));
      }
      if (stopped) return;
      const delay = Math.min(15_000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt = Math.min(attempt + 1, 10);
      h.onState('retrying', `reconnecting in ${(delay / 1000).toFixed(1)} s`);
      await pause(delay);
    }
  })();

  return () => {
    stopped = true;
    abort.abort();
    wake?.();
  };
}

/**
 * Reads one Server-Sent Events stream with fetch (not EventSource: that cannot
 * send the Authorization header a non-loopback page needs). Calls `onEvent` per
 * event with its name (`message` when none) and its data; resolves when the
 * stream ends, rejects on failure or abort.
 */
export async function readSse(path: string, signal: AbortSignal, onEvent: (event: string, data: string) => void, onOpen?: () => void): Promise<void> {
  const t = token();
  const res = await fetch(path, { headers: { accept: 'text/event-stream', ...(t === null ? {} : { authorization: `Bearer ${t}` }) }, signal });
  if (!res.ok || res.body === null) throw await failure(res);
  onOpen?.();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let event = '';
  let data: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) onEvent(event || 'message', data.join('\n'));
        event = '';
        data = [];
      } else if (line.startsWith(':')) {
        // comment (keep-alive)
      } else {
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const val = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
    }
  }
}

/**
 * Follows an SSE stream forever, reconnecting with the watch's backoff (0.5 s
 * doubling to 15 s, with jitter). Returns a stop function.
 */
export function followSse(path: string, onEvent: (event: string, data: string) => void, onState: (state: 'live' | 'retrying', detail?: string) => void): () => void {
  const abort = new AbortController();
  let attempt = 0;
  void (async () => {
    while (!abort.signal.aborted) {
      try {
        await readSse(path, abort.signal, onEvent, () => {
          attempt = 0;
          onState('live');
        });
      } catch (e) {
        if (abort.signal.aborted) return;
        onState('retrying', e instanceof Error ? e.message : String(e));
      }
      if (abort.signal.aborted) return;
      const delay = Math.min(15_000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt = Math.min(attempt + 1, 10);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        abort.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  })();
  return () => abort.abort();
}

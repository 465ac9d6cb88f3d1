import type { ServerResponse } from 'node:http';
import { httpStatusFor, isWeftError, type ErrorCode, type FieldError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';

/** The body of every failed response (docs/http-api.md, "Errors"). */
export interface Status {
  kind: 'Status';
  status: 'Failure';
  code: number;
  reason: ErrorCode;
  message: string;
  details: FieldError[];
}

/**
 * The one place a thrown value becomes a response. WeftErrors keep their code,
 * message and details; anything else is a bug: the client gets a generic 500 and
 * the log gets the stack. It never throws, so the server never goes down with a
 * request.
 */
export function sendError(res: ServerResponse, err: unknown, log: Logger, context: { method?: string; url?: string } = {}): void {
  const status = toStatus(err);
  if (status.code >= 500) log.error({ err, ...context }, 'request failed');
  else log.debug({ code: status.reason, message: status.message, ...context }, 'request refused');
  if (res.headersSent) {
    // Mid-stream (a watch): the status line is gone, so cut the stream short and
    // let the client see it end early.
    res.destroy();
    return;
  }
  try {
    sendJson(res, status.code, status);
  } catch (e) {
    log.error({ err: e }, 'could not send an error response');
    res.destroy();
  }
}

export function toStatus(err: unknown): Status {
  if (isWeftError(err)) {
    return { kind: 'Status', status: 'Failure', code: httpStatusFor(err.code), reason: err.code, message: err.message, details: err.details };
  }
  return { kind: 'Status', status: 'Failure', code: 500, reason: 'WEFT_ERR_INTERNAL', message: 'internal error (see the control plane log)', details: [] };
}

export function sendJson(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

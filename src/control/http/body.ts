import type { IncomingMessage } from 'node:http';
import { isObject, parseDocuments, type ParseResult, type SourceDocument } from '../../api/parse.js';
import { WeftError } from '../../lib/errors.js';

/** 1 MiB: far beyond any sane config, small enough that a bad client cannot hurt. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The `source` every error about a request body names (`request#2 spec.ports[0]`). */
export const BODY_SOURCE = 'request';

/**
 * Reads the whole body as UTF-8, refusing more than `limit` bytes with
 * WEFT_ERR_TOO_LARGE (413): from Content-Length before reading anything, else as
 * soon as the count passes the limit. Whatever is left unread is drained by
 * node:http after the response (bounded by the client's own upload).
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  // Events rather than `for await`: leaving an async iterator early destroys the
  // request, and with it the socket the 413 must go out on.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        req.resume(); // discard the rest
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new WeftError('WEFT_ERR_BAD_REQUEST', `reading the request body failed: ${e.message}`, { cause: e }));
    };
    const onClose = () => {
      cleanup();
      reject(new WeftError('WEFT_ERR_BAD_REQUEST', 'the client went away before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

export type BodyFormat = 'json' | 'yaml';

/**
 * JSON for `application/json` (and `+json` types), YAML for the YAML types and
 * for no Content-Type at all (YAML reads JSON too); anything else is refused.
 */
export function bodyFormat(contentType: string | undefined): BodyFormat {
  if (contentType === undefined || contentType.trim() === '') return 'yaml';
  const mime = contentType.split(';')[0]!.trim().toLowerCase();
  if (mime === 'application/json' || mime.endsWith('+json')) return 'json';
  if (['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'application/apply-patch+yaml'].includes(mime)) return 'yaml';
  throw new WeftError('WEFT_ERR_BAD_REQUEST', `unsupported Content-Type "${mime}": send application/json or application/yaml`);
}

/**
 * Turns a body into documents, as parseDocuments does for files: a YAML stream
 * of many documents, or one JSON value. In both, a `kind: List` is expanded into
 * its items.
 */
export function parseBody(text: string, format: BodyFormat, source = BODY_SOURCE): ParseResult {
  if (format === 'yaml') return parseDocuments(text, source);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { docs: [], errors: [{ source, document: 1, path: '', message: `invalid JSON: ${(e as Error).message}` }] };
  }
  const docs: SourceDocument[] = [];
  if (isObject(value) && value.kind === 'List' && Array.isArray(value.items)) {
    value.items.forEach((item: unknown, j: number) => docs.push({ source, document: 1, pathPrefix: `items[${j}]`, value: item }));
  } else if (value !== null) {
    docs.push({ source, document: 1, pathPrefix: '', value });
  }
  return { docs, errors: [] };
}

function tooLarge(limit: number): WeftError {
  return new WeftError('WEFT_ERR_TOO_LARGE', `the request body is larger than ${limit} bytes`);
}

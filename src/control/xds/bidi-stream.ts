import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../lib/log.js';

/**
 * Wires a grpc-js bidi stream to a per-stream handler: every request goes to
 * `onRequest` (a throw is logged, never kills the stream), and whichever of
 * end/error/cancelled/close comes first calls `onEnd` exactly once. SotW ADS,
 * delta ADS and SDS share this so their stream lifecycles cannot drift apart.
 */
export function serveBidiStream<Req, Res>(
  call: grpc.ServerDuplexStream<Req, Res>,
  handlers: { onRequest(req: Req): void; onEnd(): void },
  log: Logger | undefined,
  context: { stream: string; what: string },
): void {
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    handlers.onEnd();
  };
  call.on('data', (req: Req) => {
    try {
      handlers.onRequest(req);
    } catch (err) {
      log?.error({ err, stream: context.stream }, `${context.what}: request handling failed`);
    }
  });
  call.on('end', () => {
    end();
    call.end();
  });
  call.on('error', end);
  call.on('cancelled', end);
  call.on('close', end);
}

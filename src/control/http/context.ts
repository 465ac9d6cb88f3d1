import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KindRegistry } from '../../api/registry.js';
import type { Logger } from '../../lib/log.js';
import type { ConfigStore } from '../../store/types.js';

/** What every handler may use; built once per server. */
export interface ApiContext {
  store: ConfigStore;
  registry: KindRegistry;
  log: Logger;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
}

/** One request, after path checks and authentication. */
export interface ApiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
}

import type { Proc } from '../common.js';

export interface RunningPeer {
  /** Where the load goes. */
  readonly port: number;
  /** Where HTTP/2 (h2c, prior knowledge) load goes, when the peer was started with `h2` and speaks it. */
  readonly h2Port?: number;
  /** Pids whose VmRSS make up the peer's memory (a cluster primary and its workers). */
  pids(): number[];
  readonly procs: readonly Proc[];
  stop(): Promise<void>;
}

export interface StartContext {
  readonly upstreamPort: number;
  /** A private temp dir for configs, pid files, logs. */
  readonly tmp: string;
  /** Extra node flags for node peers (e.g. --cpu-prof). */
  readonly nodeFlags?: readonly string[];
  /** Also open an h2c (prior-knowledge) listener, for peers that need a separate one. */
  readonly h2?: boolean;
}

export interface Peer {
  readonly name: string;
  /** 'node' peers count for "fastest Node proxy". */
  readonly kind: 'none' | 'native' | 'node' | 'weft';
  readonly describe: string;
  /** Why the peer cannot run here (missing tool/package), or undefined. */
  missing(): string | undefined;
  start(ctx: StartContext): Promise<RunningPeer>;
}

/**
 * Where RBAC decisions are written: one JSON log line per denial or LOG match, naming
 * the policy (`ns.<ns>.<policy>[rule-<N>]`) that decided. Tests swap the sink.
 */
import { createLogger, type Logger } from '../../../lib/log.js';

export interface RbacDecision {
  /** 'denied' (enforced), 'logged' (action LOG matched), 'unevaluable' (denied: the request lacked what a matcher needs). */
  readonly decision: 'denied' | 'logged' | 'unevaluable';
  readonly action: string;
  /** The deciding policy; undefined when an ALLOW filter matched nothing. */
  readonly policy: string | undefined;
  readonly filter: 'http' | 'network';
  readonly principal: string | undefined;
  readonly remote: string;
  readonly method?: string;
  readonly path?: string;
}

export type RbacDecisionSink = (d: RbacDecision) => void;

let logger: Logger | undefined;

function defaultSink(d: RbacDecision): void {
  logger ??= createLogger('weft-proxy');
  const who = d.policy === undefined ? 'no matching policy' : `policy ${d.policy}`;
  const msg = d.decision === 'logged' ? `RBAC: logged by ${who}` : `RBAC: access denied (${d.action}, ${who})`;
  logger.info({ rbac: d }, msg);
}

let sink: RbacDecisionSink = defaultSink;

export function logRbacDecision(d: RbacDecision): void {
  sink(d);
}

/** Replaces the sink (tests); returns a function restoring the previous one. */
export function setRbacDecisionSink(s: RbacDecisionSink): () => void {
  const prev = sink;
  sink = s;
  return () => { sink = prev; };
}

import type { Resource } from '../../../api/types.js';
import { BACKEND_POLICY_SETTINGS, type BackendPolicySpec, type PolicyTargetRef } from '../../../api/backendpolicy/backendpolicy.js';

/**
 * BackendPolicy attachment (DESIGN.md "Resources", docs/api/README.md
 * "BackendPolicy"): which policy supplies each top-level setting for a target.
 *
 * A target is a Service port (endpoint settings: the Service as a backend) or a
 * route rule addressed to a Service port (request settings). Candidates, most
 * specific first:
 *
 *   4 RouteRule    targetRef {kind: HTTPRoute|GRPCRoute, name, sectionName: rule name}
 *   3 Route        targetRef {kind: HTTPRoute|GRPCRoute, name} (no sectionName)
 *   2 ServicePort  targetRef {kind: Service, name, port | sectionName: port name}
 *   1 Service      targetRef {kind: Service, name}
 *
 * (The docs rank route rule > service port > service; a whole route sits between
 * its rules and the Service it is attached to.) Among equals the oldest
 * creationTimestamp wins, then the name. Each setting is taken whole from the
 * winner: nothing inside a setting is merged with a less specific policy
 * (unset fields take BACKEND_POLICY_DEFAULTS; translation applies them).
 *
 * Policies target objects in their own namespace only.
 */

export type BackendPolicySetting = (typeof BACKEND_POLICY_SETTINGS)[number];
export type Specificity = 'RouteRule' | 'Route' | 'ServicePort' | 'Service';

const RANK: Record<Specificity, number> = { RouteRule: 4, Route: 3, ServicePort: 2, Service: 1 };

export interface PolicyTarget {
  /** The Service port the traffic is addressed to (or, for endpoint settings, the backend). */
  service: { namespace: string; name: string; port: number; portName?: string };
  /** The route rule the request matched, when there is one. */
  route?: { kind: 'HTTPRoute' | 'GRPCRoute'; namespace: string; name: string; ruleName?: string };
}

/** Where a setting came from: what `weft describe` prints. */
export interface PolicySource {
  policy: { namespace: string; name: string };
  /** Index into the policy's spec.targetRefs that matched. */
  targetRef: number;
  specificity: Specificity;
}

export type EffectiveSettings = Partial<Pick<BackendPolicySpec, BackendPolicySetting>>;

export interface EffectivePolicy {
  settings: EffectiveSettings;
  sources: Partial<Record<BackendPolicySetting, PolicySource>>;
}

export const EMPTY_POLICY: EffectivePolicy = Object.freeze({ settings: Object.freeze({}), sources: Object.freeze({}) }) as EffectivePolicy;

function isServiceGroup(g: string | undefined): boolean {
  return g === undefined || g === '' || g === 'weft.dev';
}

/** How specifically `ref` (of a policy in `ns`) names `target`, or undefined if it does not. */
export function matchTargetRef(ref: PolicyTargetRef, ns: string, target: PolicyTarget): Specificity | undefined {
  if (ref.kind === 'Service') {
    const s = target.service;
    if (!isServiceGroup(ref.group) || ns !== s.namespace || ref.name !== s.name) return undefined;
    if (ref.port !== undefined) return ref.port === s.port ? 'ServicePort' : undefined;
    if (ref.sectionName !== undefined) return ref.sectionName === s.portName ? 'ServicePort' : undefined;
    return 'Service';
  }
  const r = target.route;
  if (r === undefined || ref.kind !== r.kind || ns !== r.namespace || ref.name !== r.name) return undefined;
  if (ref.sectionName !== undefined) return ref.sectionName === r.ruleName ? 'RouteRule' : undefined;
  return 'Route';
}

interface Candidate {
  policy: Resource<BackendPolicySpec>;
  targetRef: number;
  specificity: Specificity;
}

function compareCandidates(a: Candidate, b: Candidate): number {
  const byRank = RANK[b.specificity] - RANK[a.specificity];
  if (byRank !== 0) return byRank;
  const at = a.policy.metadata.creationTimestamp ?? '';
  const bt = b.policy.metadata.creationTimestamp ?? '';
  // A policy without a timestamp (not stored yet) counts as the newest.
  if (at !== bt) return at === '' ? 1 : bt === '' ? -1 : at < bt ? -1 : 1;
  const an = a.policy.metadata.name;
  const bn = b.policy.metadata.name;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/**
 * The effective settings for `target` and, for each, the policy that supplied
 * it. Pure: the same policies and target give the same answer in any order.
 */
export function resolveBackendPolicy(policies: readonly Resource<BackendPolicySpec>[], target: PolicyTarget): EffectivePolicy {
  const candidates: Candidate[] = [];
  for (const p of policies) {
    const ns = p.metadata.namespace ?? 'default';
    let best: Candidate | undefined;
    p.spec.targetRefs.forEach((ref, i) => {
      const sp = matchTargetRef(ref, ns, target);
      if (sp !== undefined && (best === undefined || RANK[sp] > RANK[best.specificity])) best = { policy: p, targetRef: i, specificity: sp };
    });
    if (best !== undefined) candidates.push(best);
  }
  if (candidates.length === 0) return EMPTY_POLICY;
  candidates.sort(compareCandidates);
  const settings: EffectiveSettings = {};
  const sources: EffectivePolicy['sources'] = {};
  for (const key of BACKEND_POLICY_SETTINGS) {
    const winner = candidates.find((c) => c.policy.spec[key] !== undefined);
    if (winner === undefined) continue;
    (settings as Record<string, unknown>)[key] = winner.policy.spec[key];
    sources[key] = {
      policy: { namespace: winner.policy.metadata.namespace ?? 'default', name: winner.policy.metadata.name },
      targetRef: winner.targetRef,
      specificity: winner.specificity,
    };
  }
  return { settings, sources };
}

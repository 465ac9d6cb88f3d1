import type { TSchema } from '@sinclair/typebox';
import type { Resource, ResourceKey } from './types.js';

/** A reference from one resource to another, checked for existence at apply time. */
export interface Reference {
  /** Path of the referring field, e.g. `spec.rules[0].backendRefs[1]`. */
  path: string;
  target: ResourceKey;
}

/** What semantic validation may ask and tell. */
export interface ValidationContext {
  /** Record an error at `path` (rooted at the resource: `spec.ports[0].port`). */
  error(path: string, message: string): void;
}

export interface Column<S = unknown> {
  header: string;
  /** Cell text for one resource. */
  value(r: Resource<S>): string;
}

/**
 * Everything Weft knows about one kind, in one place (as Kuma's
 * ResourceTypeDescriptor): REST paths, CLI names, schema, defaults, checks, columns.
 */
export interface KindDescriptor<S = unknown> {
  kind: string;
  group: string;
  /** Accepted versions; the first is the one objects are stored and served as. */
  versions: readonly string[];
  plural: string;
  singular: string;
  shortNames: readonly string[];
  /** false for cluster-scoped kinds (Mesh). */
  namespaced: boolean;
  /** TypeBox schema of `spec` (also published as JSON Schema by `weft schema`). */
  specSchema: TSchema;
  /** Fill defaults the schema's `default` keywords cannot express. Must not throw. */
  applyDefaults?(r: Resource<S>): void;
  /** Checks beyond the schema: regexes compile, durations parse, weights add up. */
  validate?(r: Resource<S>, ctx: ValidationContext): void;
  /** Other resources this one names; each must exist (in the store or the same input). */
  references?(r: Resource<S>): Reference[];
  /** Extra columns for `weft get` (NAME, NAMESPACE and AGE are added by the CLI). */
  columns: readonly Column<S>[];
  /** One line for docs and `weft schema`. */
  description: string;
}

export function apiVersionOf(d: KindDescriptor): string {
  return `${d.group}/${d.versions[0]}`;
}

/** Helper so each kind's file keeps its spec type without casts at the call site. */
export function defineKind<S>(d: KindDescriptor<S>): KindDescriptor<S> {
  return d;
}

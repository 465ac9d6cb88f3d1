import type { KindDescriptor } from '../../api/descriptor.js';
import { apiVersionOf } from '../../api/descriptor.js';
import { isObject } from '../../api/parse.js';
import type { Resource, ResourceKey } from '../../api/types.js';
import { validateDocuments } from '../../api/validate.js';
import { WeftError, type FieldError } from '../../lib/errors.js';
import { bodyFormat, BODY_SOURCE, parseBody, readBody } from './body.js';
import type { ApiContext, ApiRequest } from './context.js';
import { sendJson } from './errors.js';
import { parseLabelSelector } from './label-selector.js';
import { dryRunOf, existsInStore, present, revisionParam, withoutStoreOwned } from './objects.js';

type Collection = { kind: KindDescriptor; namespace: string | undefined };
type One = { kind: KindDescriptor; namespace: string; name: string };

/** GET on a collection: `{ apiVersion, kind: <Kind>List, metadata: { resourceVersion }, items }`. */
export async function listObjects(ctx: ApiContext, { res, query }: ApiRequest, route: Collection): Promise<void> {
  const namespace = listNamespace(route, query);
  const selector = parseLabelSelector(query.get('labelSelector') ?? '');
  const { items, revision } = await ctx.store.list({ kind: route.kind.kind, namespace });
  sendJson(res, 200, {
    apiVersion: apiVersionOf(route.kind),
    kind: `${route.kind.kind}List`,
    metadata: { resourceVersion: String(revision) },
    items: items.filter((r) => selector(r.metadata.labels)).map((r) => present(route.kind, r)),
  });
}

/** The namespace a list or watch covers: the path's, else `?namespace=`, else all ('' ). */
export function listNamespace(route: Collection, query: URLSearchParams): string {
  const q = query.get('namespace') ?? '';
  if (!route.kind.namespaced) {
    if (q !== '') throw new WeftError('WEFT_ERR_BAD_REQUEST', `${route.kind.kind} is cluster-scoped: drop ?namespace=`);
    return '';
  }
  if (route.namespace !== undefined && q !== '' && q !== route.namespace) {
    throw new WeftError('WEFT_ERR_BAD_REQUEST', `?namespace=${q} contradicts the path's namespace "${route.namespace}"`);
  }
  return route.namespace ?? q;
}

export async function getObject(ctx: ApiContext, { res }: ApiRequest, route: One): Promise<void> {
  const r = await ctx.store.get(keyFor(route));
  if (!r) throw notFound(route);
  sendJson(res, 200, present(route.kind, r));
}

/** POST on a collection: create, 409 when the object exists. */
export async function createObject(ctx: ApiContext, { req, res, query }: ApiRequest, route: Collection): Promise<void> {
  const dryRun = dryRunOf(query);
  if (route.kind.namespaced && route.namespace === undefined) {
    throw new WeftError('WEFT_ERR_BAD_REQUEST', `create a ${route.kind.kind} in a namespace: POST .../namespaces/{namespace}/${route.kind.plural}`);
  }
  const namespace = route.namespace ?? '';
  const input = await readOne(ctx, req);
  if (isObject(input.metadata) && input.metadata.resourceVersion !== undefined) {
    throw invalid([{ source: BODY_SOURCE, document: 1, path: 'metadata.resourceVersion', message: 'must not be set on create (use PUT to replace)' }]);
  }
  const r = await validateForPath(ctx, input, route.kind, namespace, undefined);
  const key: ResourceKey = { kind: r.kind, namespace, name: r.metadata.name };
  if (dryRun) {
    if (await ctx.store.get(key)) throw alreadyExists(route.kind, key);
    sendJson(res, 201, r);
    return;
  }
  let stored: Resource;
  try {
    stored = await ctx.store.put(r, { expectedResourceVersion: null });
  } catch (e) {
    // The store reports "exists" as a conflict; say which object.
    if (e instanceof WeftError && e.code === 'WEFT_ERR_CONFLICT') throw alreadyExists(route.kind, key, e);
    throw e;
  }
  ctx.log.info({ key, resourceVersion: stored.metadata.resourceVersion }, 'created');
  sendJson(res, 201, present(route.kind, stored));
}

/**
 * PUT on an object: create or replace (201 or 200). `metadata.resourceVersion`
 * in the body makes it conditional: 409 unless the stored object still has it.
 */
export async function replaceObject(ctx: ApiContext, { req, res, query }: ApiRequest, route: One): Promise<void> {
  const dryRun = dryRunOf(query);
  const input = await readOne(ctx, req);
  const r = await validateForPath(ctx, input, route.kind, route.namespace, route.name);
  const key = keyFor(route);
  const expected = isObject(input.metadata) && typeof input.metadata.resourceVersion === 'string' ? input.metadata.resourceVersion : undefined;
  const current = await ctx.store.get(key);
  if (dryRun) {
    checkPrecondition(route, current, expected);
    sendJson(res, current ? 200 : 201, r);
    return;
  }
  const stored = await ctx.store.put(r, expected === undefined ? {} : { expectedResourceVersion: expected });
  ctx.log.info({ key, resourceVersion: stored.metadata.resourceVersion }, current ? 'replaced' : 'created');
  sendJson(res, current ? 200 : 201, present(route.kind, stored));
}

/** DELETE: answers the deleted object; `?resourceVersion=N` is a precondition. */
export async function deleteObject(ctx: ApiContext, { res, query }: ApiRequest, route: One): Promise<void> {
  const dryRun = dryRunOf(query);
  const expected = revisionParam(query, 'resourceVersion');
  const key = keyFor(route);
  if (dryRun) {
    const current = await ctx.store.get(key);
    if (!current) throw notFound(route);
    checkPrecondition(route, current, expected);
    sendJson(res, 200, present(route.kind, current));
    return;
  }
  const deleted = await ctx.store.delete(key, expected === undefined ? {} : { expectedResourceVersion: expected });
  if (!deleted) throw notFound(route);
  ctx.log.info({ key }, 'deleted');
  sendJson(res, 200, present(route.kind, deleted));
}

/** Reads a body that must hold exactly one object. */
async function readOne(ctx: ApiContext, req: ApiRequest['req']): Promise<Record<string, unknown>> {
  const format = bodyFormat(req.headers['content-type']);
  const text = await readBody(req, ctx.maxBodyBytes);
  const { docs, errors } = parseBody(text, format);
  if (errors.length > 0) throw new WeftError('WEFT_ERR_PARSE', errors.length === 1 ? errors[0]!.message : `${errors.length} parse errors`, { details: errors });
  if (docs.length !== 1) throw new WeftError('WEFT_ERR_BAD_REQUEST', `the body must hold exactly one object, it holds ${docs.length} (use POST /apply for many)`);
  const value = docs[0]!.value;
  if (!isObject(value)) throw invalid([{ source: BODY_SOURCE, document: 1, path: '', message: 'a resource must be a mapping with apiVersion, kind, metadata and spec' }]);
  return value;
}

/**
 * The path decides kind, namespace and (for PUT) name; the body may repeat them
 * but not contradict them. Then the same validation as every other input.
 */
async function validateForPath(ctx: ApiContext, input: Record<string, unknown>, kind: KindDescriptor, namespace: string, name: string | undefined): Promise<Resource> {
  const errors: FieldError[] = [];
  const at = (path: string, message: string) => errors.push({ source: BODY_SOURCE, document: 1, path, message });
  const value = structuredClone(input);
  if (value.kind !== kind.kind) at('kind', `must be "${kind.kind}" (the kind of the path), got ${JSON.stringify(value.kind ?? null)}`);
  if (isObject(value.metadata)) {
    const meta = value.metadata;
    if (kind.namespaced && meta.namespace !== undefined && meta.namespace !== namespace) {
      at('metadata.namespace', `must be "${namespace}" (the namespace of the path), got ${JSON.stringify(meta.namespace)}`);
    }
    if (name !== undefined) {
      if (meta.name === undefined) meta.name = name;
      else if (meta.name !== name) at('metadata.name', `must be "${name}" (the name in the path), got ${JSON.stringify(meta.name)}`);
    }
  }
  if (errors.length > 0) throw invalid(errors);
  const exists = await existsInStore(ctx.store, ctx.registry, [kind.kind]);
  const doc = { source: BODY_SOURCE, document: 1, pathPrefix: '', value };
  const result = validateDocuments([doc], { registry: ctx.registry, defaultNamespace: namespace || undefined, exists });
  if (result.errors.length > 0) throw invalid(result.errors);
  return withoutStoreOwned(result.resources[0]!);
}

function checkPrecondition(route: One, current: Resource | undefined, expected: string | undefined): void {
  if (expected === undefined) return;
  if (expected === '0') {
    if (current) throw new WeftError('WEFT_ERR_CONFLICT', `${describe(route)} already exists (resourceVersion "0" means: create only)`);
    return;
  }
  if (!current) throw new WeftError('WEFT_ERR_CONFLICT', `${describe(route)} does not exist (expected resourceVersion ${expected})`);
  if (current.metadata.resourceVersion !== expected) {
    throw new WeftError('WEFT_ERR_CONFLICT', `${describe(route)} has resourceVersion ${current.metadata.resourceVersion}, not ${expected}: get it again and retry`);
  }
}

export function invalid(details: FieldError[]): WeftError {
  const docs = new Set(details.map((d) => `${d.source}#${d.document}`)).size;
  const message = `${details.length} error${details.length === 1 ? '' : 's'} in ${docs} object${docs === 1 ? '' : 's'}`;
  return new WeftError('WEFT_ERR_INVALID', message, { details });
}

function keyFor(route: One): ResourceKey {
  return { kind: route.kind.kind, namespace: route.namespace, name: route.name };
}

function describe(route: One): string {
  return route.namespace === '' ? `${route.kind.kind} ${route.name}` : `${route.kind.kind} ${route.namespace}/${route.name}`;
}

function notFound(route: One): WeftError {
  return new WeftError('WEFT_ERR_NOT_FOUND', `${describe(route)} not found`);
}

function alreadyExists(kind: KindDescriptor, key: ResourceKey, cause?: unknown): WeftError {
  const what = key.namespace === '' ? `${kind.kind} ${key.name}` : `${kind.kind} ${key.namespace}/${key.name}`;
  return new WeftError('WEFT_ERR_CONFLICT', `${what} already exists`, { cause });
}

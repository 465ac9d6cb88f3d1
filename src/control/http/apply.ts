import { isObject } from '../../api/parse.js';
import { keyOf, type Resource } from '../../api/types.js';
import { validateDocuments } from '../../api/validate.js';
import { isWeftError, WeftError } from '../../lib/errors.js';
import { bodyFormat, parseBody, readBody } from './body.js';
import type { ApiContext, ApiRequest } from './context.js';
import { sendJson } from './errors.js';
import { dryRunOf, existsInStore, sameContent, withoutStoreOwned } from './objects.js';
import { invalid } from './resources.js';

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ApplyItem {
  kind: string;
  /** Absent for cluster-scoped kinds. */
  namespace?: string;
  name: string;
  action: ApplyAction;
}

export interface ApplyResult {
  items: ApplyItem[];
  dryRun: boolean;
}

/** Retries when another writer slips in between reading the current objects and writing. */
const MAX_ATTEMPTS = 3;

/**
 * POST /apply: every document of the body is parsed and validated together
 * (references may point at each other or at stored objects), then the changed
 * ones are written in one all-or-nothing putMany. Any error anywhere: nothing is
 * written and every error is reported. Unchanged objects are not rewritten, so
 * they keep their resourceVersion and watchers see no event.
 *
 * `?namespace=ns` is the namespace for objects that name none (as `kubectl
 * apply -n`); store-owned metadata in the input (`resourceVersion`, ...) is
 * ignored: apply is last-writer-wins.
 */
export async function applyDocuments(ctx: ApiContext, { req, res, query }: ApiRequest): Promise<void> {
  const dryRun = dryRunOf(query);
  const namespace = query.get('namespace') ?? '';
  const format = bodyFormat(req.headers['content-type']);
  const text = await readBody(req, ctx.maxBodyBytes);
  const parsed = parseBody(text, format);
  const kindsInInput = parsed.docs.map((d) => (isObject(d.value) && typeof d.value.kind === 'string' ? d.value.kind : ''));
  const exists = await existsInStore(ctx.store, ctx.registry, kindsInInput);
  const validated = validateDocuments(parsed.docs, { registry: ctx.registry, defaultNamespace: namespace || undefined, exists });
  const errors = [...parsed.errors, ...validated.errors].sort((a, b) => (a.document ?? 0) - (b.document ?? 0));
  if (errors.length > 0) {
    const err = invalid(errors);
    throw validated.errors.length === 0 ? new WeftError('WEFT_ERR_PARSE', err.message, { details: errors }) : err;
  }
  if (validated.resources.length === 0) throw new WeftError('WEFT_ERR_BAD_REQUEST', 'the body holds no objects');

  const resources = validated.resources.map(withoutStoreOwned);
  for (let attempt = 1; ; attempt++) {
    try {
      const items = await applyOnce(ctx, resources, dryRun);
      const result: ApplyResult = { items, dryRun };
      if (!dryRun) ctx.log.info({ items: items.filter((i) => i.action !== 'unchanged') }, 'applied');
      sendJson(res, 200, result);
      return;
    } catch (e) {
      if (!isWeftError(e, 'WEFT_ERR_CONFLICT') || attempt >= MAX_ATTEMPTS) throw e;
      ctx.log.debug({ attempt }, 'apply raced another writer; retrying');
    }
  }
}

async function applyOnce(ctx: ApiContext, resources: readonly Resource[], dryRun: boolean): Promise<ApplyItem[]> {
  const current = await Promise.all(resources.map((r) => ctx.store.get(keyOf(r))));
  const items = resources.map((r, i): ApplyItem => {
    const c = current[i];
    const action: ApplyAction = c === undefined ? 'created' : sameContent(c, r) ? 'unchanged' : 'configured';
    const { kind, namespace, name } = keyOf(r);
    return namespace === '' ? { kind, name, action } : { kind, namespace, name, action };
  });
  const writes = resources.flatMap((r, i) => (items[i]!.action === 'unchanged' ? [] : [{ r, expected: current[i]?.metadata.resourceVersion ?? null }]));
  if (!dryRun && writes.length > 0) {
    // Preconditions pin what was compared above: a concurrent writer makes this a
    // conflict (and a retry) instead of a wrong created/configured report.
    await ctx.store.putMany(
      writes.map((w) => w.r),
      { expectedResourceVersions: writes.map((w) => w.expected) },
    );
  }
  return items;
}

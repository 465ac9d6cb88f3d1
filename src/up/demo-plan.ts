/**
 * The demo application of `weft up`: which workloads run (each with `weft run`),
 * with what labels, identity and ports, and the demo's YAML with its app ports
 * replaced by free ones.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface DemoWorkload {
  /** Unique among the demo's processes: `catalog-v2-b`. */
  readonly name: string;
  /** The Service it registers as (WEFT_SERVICE). */
  readonly service: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** examples/demo/apps/<script> */
  readonly script: string;
  readonly address: string;
  readonly port: number;
  readonly env: Readonly<Record<string, string>>;
  /** 'http' apps answer GET /healthz; the others are checked by a TCP connect. */
  readonly kind: 'http' | 'grpc' | 'tcp';
}

/** Service name → the port its app listens on (targetPort). */
export type PortPlan = Readonly<Record<string, number>>;

/** The Services whose targetPort weft up chooses (catalog shares catalog-v1's). */
export const DEMO_SERVICES = ['web', 'catalog-v1', 'catalog-v2', 'inventory', 'ledger'] as const;

/**
 * The workloads, in start order (callees first, so web finds everything).
 * `secondAddress` is where the second catalog-v2 instance listens: two
 * instances of one Service on one host need two addresses (their endpoints
 * are address:targetPort); undefined where only 127.0.0.1 exists (macOS
 * without an alias), and then v2 runs one (flaky) instance.
 */
export function demoWorkloads(ports: PortPlan, secondAddress: string | undefined): DemoWorkload[] {
  const w = (name: string, service: string, labels: Record<string, string>, sa: string, script: string, kind: DemoWorkload['kind'], env: Record<string, string> = {}, address = '127.0.0.1'): DemoWorkload => ({
    name, service, labels, serviceAccount: sa, script, address, port: ports[service]!, env, kind,
  });
  const out: DemoWorkload[] = [
    w('inventory', 'inventory', { app: 'inventory' }, 'inventory', 'inventory.mjs', 'grpc'),
    w('ledger', 'ledger', { app: 'ledger' }, 'ledger', 'ledger.mjs', 'tcp'),
    w('catalog-v1', 'catalog-v1', { app: 'catalog', version: 'v1' }, 'catalog', 'catalog.mjs', 'http', { CATALOG_VERSION: 'v1', CATALOG_INSTANCE: 'v1-a' }),
  ];
  if (secondAddress !== undefined) {
    out.push(
      w('catalog-v2-a', 'catalog-v2', { app: 'catalog', version: 'v2' }, 'catalog', 'catalog.mjs', 'http', { CATALOG_VERSION: 'v2', CATALOG_INSTANCE: 'v2-a' }),
      w('catalog-v2-b', 'catalog-v2', { app: 'catalog', version: 'v2' }, 'catalog', 'catalog.mjs', 'http', { CATALOG_VERSION: 'v2', CATALOG_INSTANCE: 'v2-b (flaky)', CATALOG_FAIL_RATE: '0.3' }, secondAddress),
    );
  } else {
    out.push(w('catalog-v2-a', 'catalog-v2', { app: 'catalog', version: 'v2' }, 'catalog', 'catalog.mjs', 'http', { CATALOG_VERSION: 'v2', CATALOG_INSTANCE: 'v2-a (flaky)', CATALOG_FAIL_RATE: '0.3' }));
  }
  out.push(w('web', 'web', { app: 'web' }, 'web', 'web.mjs', 'http'));
  return out;
}

/** Every *.yaml of `dir` in name order, as one multi-document stream. */
export async function readDemoYaml(dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  const parts: string[] = [];
  for (const f of files) parts.push((await readFile(join(dir, f), 'utf8')).trimEnd());
  return parts.join('\n---\n') + '\n';
}

/**
 * The demo YAML with each planned Service's ports' targetPort set from `ports`.
 * `catalog` (the parent Service of the split) follows catalog-v1, whose
 * instance it selects. Everything else is left as written.
 */
export function withPorts(yamlText: string, ports: PortPlan): string {
  const docs = parseAllDocuments(yamlText);
  const out: string[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw doc.errors[0]!;
    const obj = doc.toJS() as { kind?: string; metadata?: { name?: string }; spec?: { ports?: { targetPort?: number }[] } } | null;
    if (obj === null || obj === undefined) continue;
    const name = obj.metadata?.name ?? '';
    const planned = ports[name === 'catalog' ? 'catalog-v1' : name];
    if (obj.kind === 'Service' && planned !== undefined) for (const p of obj.spec?.ports ?? []) p.targetPort = planned;
    out.push(JSON.stringify(obj));
  }
  // A JSON document is YAML too; the API takes a stream of them.
  return out.join('\n---\n') + '\n';
}

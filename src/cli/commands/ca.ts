import { InvalidArgumentError, type Command } from 'commander';
import type { CaStatus, RotateResult, RotateStep } from '../../control/identity/ca-rotation.js';
import { clientFor } from '../context.js';
import { humanDuration, renderTable, toJson, toYaml } from '../output.js';

type ShowFormat = 'table' | 'json' | 'yaml';

/** Kept here rather than imported as a value: importing the control plane's module would load node:crypto X.509 code for nothing. */
const STEPS: readonly RotateStep[] = ['add', 'promote', 'retire'];

function showFormat(v: string): ShowFormat {
  if (v !== 'table' && v !== 'json' && v !== 'yaml') throw new InvalidArgumentError(`want table, json or yaml, got "${v}"`);
  return v;
}

function rotateStep(v: string): RotateStep {
  if (!(STEPS as readonly string[]).includes(v)) throw new InvalidArgumentError(`want ${STEPS.join(', ')}, got "${v}"`);
  return v as RotateStep;
}

/** `2036-11-23T17:20:00.000Z (in 9y)`, or `(… ago)` once past. */
function when(iso: string, now: number): string {
  const t = Date.parse(iso);
  return t >= now ? `${iso} (in ${humanDuration(t - now)})` : `${iso} (${humanDuration(now - t)} ago)`;
}

/** What `weft ca show` prints by default: a few facts, then one row per trusted root. */
export function caStatusTable(s: CaStatus, now = Date.now()): string {
  const facts: [string, string][] = [
    ['Trust domain', s.trustDomain],
    ['Root source', s.source === 'generated' ? 'generated (DATA_DIR/ca)' : 'supplied files'],
    ['Rotation', s.phase],
    ['Workload TTL', `${s.workloadTtl.duration} (${s.workloadTtl.source === 'override' ? '--dev-workload-ttl' : 'Mesh'})`],
    ['Issued', `${s.certificates.issuedTotal} since start, ${s.certificates.live} unexpired`],
    ['Earliest expiry', s.certificates.earliestExpiry === undefined ? '<none>' : when(s.certificates.earliestExpiry, now)],
  ];
  if (s.intermediate !== undefined) facts.push(['Intermediate', `${s.intermediate.subject}, expires ${when(s.intermediate.notAfter, now)}`]);
  if (s.propagation !== undefined) facts.push(['Bundle held by', `${s.propagation.current} of ${s.propagation.clients} proxies`]);
  facts.push(['Next', s.next]);
  const width = Math.max(...facts.map(([k]) => k.length)) + 1;
  const head = facts.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}\n`).join('');
  const rows = s.roots.map((r) => [r.id, r.signing ? 'yes' : 'no', r.subject, r.notBefore, r.notAfter, r.serialNumber, r.fingerprintSha256]);
  return `${head}\n${renderTable(['ROOT', 'SIGNS', 'SUBJECT', 'NOT BEFORE', 'NOT AFTER', 'SERIAL', 'SHA-256'], rows)}`;
}

export function registerCa(program: Command): void {
  const ca = program.command('ca').description('the mesh certificate authority: its roots, and root rotation');
  ca
    .command('show')
    .description('the trust bundle (roots, which one signs, fingerprints, expiries), the workload TTL and certificates issued')
    .option('-o, --output <format>', 'table, json or yaml', showFormat, 'table')
    .action(async (opts: { output: ShowFormat }, cmd: Command) => {
      const s = await clientFor(cmd).json<CaStatus>('GET', '/ca/status');
      process.stdout.write(opts.output === 'json' ? toJson(s) : opts.output === 'yaml' ? toYaml(s) : caStatusTable(s));
    });
  ca
    .command('rotate')
    .description('one step of a root rotation: add a new root to the bundle, promote it to signer, retire the old root (needs the admin token)')
    .argument('<step>', STEPS.join(' | '), rotateStep)
    .option('--force', 'promote before every proxy holds the new bundle, or retire while certificates of the old root may still be valid (those proxies fail until they renew)')
    .addHelpText('after', `
Steps, with time between them (docs/security.md, "Rotating the root"):
  weft ca rotate add       a new root joins the trust bundle; the old one still signs
  weft ca rotate promote   once every proxy holds the new bundle: the new root signs
  weft ca rotate retire    once the old root's certificates have expired: it leaves the bundle
A step that is not safe yet is refused (exit 1) with the reason. Supplied CA files,
and replicas on etcd, are rotated by supplying new files instead.`)
    .action(async (step: RotateStep, opts: { force?: boolean }, cmd: Command) => {
      const res = await clientFor(cmd).json<RotateResult>('POST', '/ca/rotate', {
        body: JSON.stringify({ step, ...(opts.force === true ? { force: true } : {}) }),
        contentType: 'application/json',
      });
      process.stdout.write(`${res.message}\n`);
    });
}

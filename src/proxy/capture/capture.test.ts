// Transparent capture as data: the iptables rule set, its exact removal, the
// original-destination dispatch decision and the Service VIPs. The rules are applied
// for real (as root, in a network namespace) by test/e2e/transparent.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCapture, captureRules, defaultCaptureOptions, removalCommands, removeCapture, restoreScript, type IptablesRunner } from './iptables.js';
import { decide } from '../listeners/original-dst.js';
import { hostsFileText, servicesOf, syncHostsFile } from './hosts-file.js';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostsEntries, isServiceVip, serviceVip } from '../../lib/service-vip.js';
import { isWeftError } from '../../lib/errors.js';
import type { Snapshot } from '../config/state.js';
import type { CompiledListener, CompiledRouteConfig } from '../config/types.js';

describe('captureRules', () => {
  test('default rules: inbound exclusions, redirects, proxy gid, loopback, then the catch-all jump', () => {
    const rules = captureRules(defaultCaptureOptions()).map((r) => [r.chain, ...r.spec].join(' '));
    assert.deepEqual(rules, [
      'WEFT_INBOUND -p tcp --dport 22 -j RETURN',
      'WEFT_INBOUND -p tcp --dport 15000 -j RETURN',
      'WEFT_INBOUND -p tcp --dport 15001 -j RETURN',
      'WEFT_INBOUND -p tcp --dport 15006 -j RETURN',
      'WEFT_INBOUND -p tcp --dport 15010 -j RETURN',
      'WEFT_INBOUND -p tcp --dport 15020 -j RETURN',
      'WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT',
      'WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      'WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      'WEFT_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      'WEFT_OUTPUT -d 127.0.0.0/8 -j RETURN',
      'WEFT_OUTPUT -j WEFT_REDIRECT',
    ]);
  });

  test('exclusions and uid owner come before the catch-all redirect', () => {
    const rules = captureRules(defaultCaptureOptions({ proxyUids: [1337], excludeOutboundPorts: [5432], excludeOutboundCidrs: ['10.0.0.0/8'], outboundPort: 16001 }))
      .filter((r) => r.chain === 'WEFT_OUTPUT' || r.chain === 'WEFT_REDIRECT')
      .map((r) => [r.chain, ...r.spec].join(' '));
    assert.deepEqual(rules, [
      'WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 16001',
      'WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      'WEFT_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      'WEFT_OUTPUT -d 127.0.0.0/8 -j RETURN',
      'WEFT_OUTPUT -p tcp --dport 5432 -j RETURN',
      'WEFT_OUTPUT -d 10.0.0.0/8 -j RETURN',
      'WEFT_OUTPUT -j WEFT_REDIRECT',
    ]);
  });

  test('outbound only: no inbound chains nor PREROUTING jump', () => {
    const script = restoreScript(defaultCaptureOptions({ captureInbound: false }));
    assert.doesNotMatch(script, /WEFT_INBOUND|WEFT_IN_REDIRECT|PREROUTING/);
    assert.match(script, /^-A OUTPUT -p tcp -j WEFT_OUTPUT$/m);
  });

  test('restore script declares the chains, then rules, then the jumps, in one COMMIT', () => {
    const lines = restoreScript(defaultCaptureOptions()).trim().split('\n');
    assert.equal(lines[0], '*nat');
    assert.deepEqual(lines.slice(1, 5), [':WEFT_INBOUND - [0:0]', ':WEFT_IN_REDIRECT - [0:0]', ':WEFT_OUTPUT - [0:0]', ':WEFT_REDIRECT - [0:0]']);
    assert.deepEqual(lines.slice(-3), ['-A PREROUTING -p tcp -j WEFT_INBOUND', '-A OUTPUT -p tcp -j WEFT_OUTPUT', 'COMMIT']);
  });

  test('refuses options that would loop or are not valid', () => {
    assert.throws(() => captureRules(defaultCaptureOptions({ proxyGids: [], proxyUids: [] })), (e) => isWeftError(e, 'WEFT_ERR_USAGE'));
    assert.throws(() => captureRules(defaultCaptureOptions({ outboundPort: 0 })), (e) => isWeftError(e, 'WEFT_ERR_USAGE'));
    assert.throws(() => captureRules(defaultCaptureOptions({ excludeOutboundCidrs: ['10.0.0.0/33'] })), (e) => isWeftError(e, 'WEFT_ERR_USAGE'));
    assert.throws(() => captureRules(defaultCaptureOptions({ excludeOutboundCidrs: ['-j ACCEPT'] })), (e) => isWeftError(e, 'WEFT_ERR_USAGE'));
  });
});

describe('apply and remove', () => {
  /** Records calls; `-D` of a jump succeeds `dupes` times, as after a crash left duplicates. */
  function recorder(dupes: number): IptablesRunner & { calls: string[] } {
    let left = dupes;
    const calls: string[] = [];
    return {
      calls,
      async iptables(args) {
        calls.push(args.join(' '));
        if (args[2] === '-D' && args[3] === 'OUTPUT') {
          if (left-- <= 0) throw new Error('no such rule');
        } else if (args[2] === '-D') {
          throw new Error('no such rule');
        }
      },
      async restore(args, input) {
        calls.push(`restore ${args.join(' ')} ${input.split('\n').length}`);
      },
    };
  }

  test('remove deletes duplicate jumps until none is left, then flushes and deletes every chain', async () => {
    const r = recorder(3);
    await removeCapture(r);
    assert.equal(r.calls.filter((c) => c === '-t nat -D OUTPUT -p tcp -j WEFT_OUTPUT').length, 4);
    assert.deepEqual(r.calls.slice(-8), [
      '-t nat -F WEFT_INBOUND', '-t nat -F WEFT_IN_REDIRECT', '-t nat -F WEFT_OUTPUT', '-t nat -F WEFT_REDIRECT',
      '-t nat -X WEFT_INBOUND', '-t nat -X WEFT_IN_REDIRECT', '-t nat -X WEFT_OUTPUT', '-t nat -X WEFT_REDIRECT',
    ]);
  });

  test('apply cleans up first, then restores without flushing other rules', async () => {
    const r = recorder(0);
    await applyCapture(defaultCaptureOptions(), r);
    const last = r.calls[r.calls.length - 1]!;
    assert.match(last, /^restore --noflush /);
    assert.ok(r.calls.indexOf('-t nat -X WEFT_OUTPUT') < r.calls.length - 1);
  });

  test('removal touches only Weft chains and the two jumps into them', () => {
    for (const c of removalCommands()) {
      const target = c.args[2] === '-D' ? c.args[c.args.length - 1] : c.args[3];
      assert.match(target!, /^WEFT_/);
    }
  });
});

describe('Service VIPs', () => {
  test('deterministic, inside 240.240.0.0/16, never .0 or .255', () => {
    assert.equal(serviceVip('catalog', 'default'), serviceVip('catalog', 'default'));
    assert.notEqual(serviceVip('catalog', 'default'), serviceVip('catalog', 'shop'));
    for (let i = 0; i < 2000; i++) {
      const ip = serviceVip(`svc-${i}`, 'ns');
      assert.ok(isServiceVip(ip));
      const last = Number(ip.split('.')[3]);
      assert.ok(last >= 1 && last <= 254, ip);
    }
  });

  test('hosts entries name every form of the Service host', () => {
    const text = hostsEntries([{ name: 'catalog', namespace: 'default' }]);
    assert.match(text, new RegExp(`^${serviceVip('catalog', 'default').replace(/\./g, '\\.')} catalog\\.default catalog\\.default\\.svc catalog\\.default\\.svc\\.cluster\\.local$`, 'm'));
    assert.match(text, /^127\.0\.0\.1 localhost$/m);
  });
});

describe('original destination dispatch', () => {
  function snap(listeners: Partial<CompiledListener>[], blockAll = false): Snapshot {
    const l = new Map(listeners.map((x) => [x.name!, x as CompiledListener]));
    const vhosts = blockAll ? [{ name: 'catalog' }, { name: 'block_all' }] : [{ name: 'catalog' }];
    const routes = new Map([['outbound', { name: 'outbound', virtualHosts: vhosts } as unknown as CompiledRouteConfig]]);
    return { listeners: l, routes } as unknown as Snapshot;
  }
  const tcp = { cluster: 'outbound|9000||ledger.default.svc.cluster.local', idleTimeoutMs: 0 } as unknown as CompiledListener['tcp'];
  const listeners = [{ name: 'outbound', port: 15001, hcm: {} as CompiledListener['hcm'] }, { name: 'tcp|ledger.default:9000', port: 9000, tcp }];

  test('a VIP on a TCP Service port goes to that port\'s tcp_proxy', () => {
    assert.deepEqual(decide({ address: serviceVip('ledger', 'default'), port: 9000 }, snap(listeners)), { kind: 'tcp', listener: 'tcp|ledger.default:9000' });
  });
  test('a VIP on any other port is HTTP, routed by Host', () => {
    assert.deepEqual(decide({ address: serviceVip('catalog', 'default'), port: 80 }, snap(listeners)), { kind: 'http' });
  });
  test('outside the mesh: passthrough (ALLOW_ANY) or refused (REGISTRY_ONLY)', () => {
    assert.deepEqual(decide({ address: '10.1.2.3', port: 9000 }, snap(listeners)), { kind: 'passthrough' });
    assert.deepEqual(decide({ address: '10.1.2.3', port: 80 }, snap(listeners, true)), { kind: 'refuse' });
  });
});

describe('hosts file', () => {
  const snap = {
    routes: new Map([['outbound', { virtualHosts: [
      { name: 'catalog', domains: ['catalog', 'catalog:80', 'catalog.default', 'catalog.default:80', 'catalog.default.svc', 'catalog.default.svc.cluster.local'] },
      { name: 'reviews', domains: ['reviews.shop', 'reviews.shop:9080'] },
      { name: 'block_all', domains: ['*'] },
    ] }]]),
    listeners: new Map([['outbound', {}], ['tcp|ledger.bank:9000', {}]]),
  } as unknown as Snapshot;

  test('lists every name.namespace routed to, HTTP and TCP, once, sorted', () => {
    assert.deepEqual(servicesOf(snap), [
      { name: 'catalog', namespace: 'default' },
      { name: 'ledger', namespace: 'bank' },
      { name: 'reviews', namespace: 'shop' },
    ]);
    assert.match(hostsFileText(snap), new RegExp(`^${serviceVip('ledger', 'bank').replace(/\./g, '\\.')} ledger\\.bank `, 'm'));
  });

  test('rewrites in place (same inode, for bind mounts) and only when the content changed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-hosts-'));
    try {
      const path = join(dir, 'hosts');
      assert.equal(await syncHostsFile(path, snap), true);
      const ino = (await stat(path)).ino;
      assert.equal(await syncHostsFile(path, snap), false);
      const fewer = { ...snap, listeners: new Map() } as unknown as Snapshot;
      assert.equal(await syncHostsFile(path, fewer), true);
      assert.equal((await stat(path)).ino, ino);
      assert.doesNotMatch(await readFile(path, 'utf8'), /ledger/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

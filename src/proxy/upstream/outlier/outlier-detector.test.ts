// The outlier detector on a fake clock: ejection rules, back-off, un-ejection, success rate.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { OutlierConfig } from '../../config/types.js';
import { HostHealth } from '../cluster/host-health.js';
import { OutlierDetector } from './outlier-detector.js';

const base: OutlierConfig = {
  consecutive5xx: 5, enforcingConsecutive5xx: 100, consecutiveGatewayFailure: 5, enforcingConsecutiveGatewayFailure: 0,
  intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionTimeMs: 300_000, maxEjectionPercent: 100,
  enforcingSuccessRate: 100, successRateMinimumHosts: 3, successRateRequestVolume: 10, successRateStdevFactor: 1900,
};

function setup(cfg: Partial<OutlierConfig> = {}, hosts = ['a', 'b', 'c', 'd']) {
  let now = 0;
  const health = new HostHealth();
  const d = new OutlierDetector({ ...base, ...cfg }, health, { now: () => now, timer: false, random: () => 0.5 });
  d.setHosts(new Set(hosts));
  return { d, health, advance: (ms: number) => { now += ms; d.tick(); } };
}
const r5 = { kind: 'response', status: 503, grpcStatus: undefined } as const;
const r2 = { kind: 'response', status: 200, grpcStatus: undefined } as const;

describe('outlier detector', () => {
  test('consecutive_5xx ejects; a success in between resets the count', () => {
    const { d, health } = setup();
    for (let i = 0; i < 4; i++) d.report('a', r5);
    d.report('a', r2);
    for (let i = 0; i < 4; i++) d.report('a', r5);
    assert.equal(health.isEjected('a'), false);
    d.report('a', r5);
    assert.equal(health.isEjected('a'), true);
  });

  test('connect failures count as gateway failures; enforcing 0 detects but does not eject', () => {
    const { d, health } = setup({ consecutive5xx: 0, consecutiveGatewayFailure: 2 });
    d.report('a', { kind: 'connect-failure' });
    d.report('a', { kind: 'reset' });
    assert.equal(health.isEjected('a'), false);
    const s = setup({ consecutive5xx: 0, consecutiveGatewayFailure: 2, enforcingConsecutiveGatewayFailure: 100 });
    s.d.report('a', { kind: 'connect-failure' });
    s.d.report('a', { kind: 'per-try-timeout' });
    assert.equal(s.health.isEjected('a'), true);
    s.d.report('b', { kind: 'timeout' });
    s.d.report('b', { kind: 'reset' });
    assert.equal(s.health.isEjected('b'), true);
  });

  test('ejection lasts base × number of ejections, and comes back', () => {
    const { d, health, advance } = setup({ consecutive5xx: 1 });
    d.report('a', r5);
    advance(29_999);
    assert.equal(health.isEjected('a'), true);
    advance(1);
    assert.equal(health.isEjected('a'), false);
    d.report('a', r5); // second ejection: 60 s
    advance(30_000);
    assert.equal(health.isEjected('a'), true);
    advance(30_000);
    assert.equal(health.isEjected('a'), false);
  });

  test('max_ejection_percent, but one host may always be ejected', () => {
    const { d, health } = setup({ consecutive5xx: 1, maxEjectionPercent: 10 });
    d.report('a', r5);
    d.report('b', r5);
    assert.equal(health.ejectedCount, 1);
    const s = setup({ consecutive5xx: 1, maxEjectionPercent: 50 });
    for (const h of ['a', 'b', 'c']) s.d.report(h, r5);
    assert.equal(s.health.ejectedCount, 2);
  });

  test('success rate: the host far below the mean is ejected at the interval', () => {
    const { d, health, advance } = setup({ consecutive5xx: 0 }, ['a', 'b', 'c', 'd', 'e']);
    for (const h of ['a', 'b', 'c', 'd']) for (let i = 0; i < 20; i++) d.report(h, r2);
    for (let i = 0; i < 20; i++) d.report('e', i % 2 === 0 ? r5 : r2);
    assert.equal(health.isEjected('e'), false);
    advance(10_000);
    assert.equal(health.isEjected('e'), true);
    assert.equal(health.ejectedCount, 1);
  });

  test('success rate needs minimum_hosts with request_volume', () => {
    const { d, health, advance } = setup({ consecutive5xx: 0 }, ['a', 'b', 'c']);
    for (let i = 0; i < 20; i++) d.report('a', r2);
    for (let i = 0; i < 20; i++) d.report('b', r5);
    for (let i = 0; i < 5; i++) d.report('c', r2);
    advance(10_000);
    assert.equal(health.ejectedCount, 0);
  });
});

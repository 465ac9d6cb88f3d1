import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority } from '../ca/ca.js';
import { generateRoot } from '../ca/root.js';
import type { LeaderStatus } from '../ha/leader.js';
import { rootRotationDue, startRootRotation, type DutyClock } from './root-rotation.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A 30-day root: due after 20 days (1/3 left); a 24 h workload TTL does not bring it forward. */
const ROOT_TTL = 30 * DAY;

function fakeClock(): DutyClock & { t: number; ticks: Set<() => void>; tick(ms: number): void } {
  const c = {
    t: T0,
    ticks: new Set<() => void>(),
    now: () => c.t,
    setInterval: (fn: () => void) => { c.ticks.add(fn); return fn; },
    clearInterval: (h: unknown) => { c.ticks.delete(h as () => void); },
    /** Moves time and fires the interval timers (each fires once per call: the tests step by the interval). */
    tick: (ms: number) => { c.t += ms; for (const fn of c.ticks) fn(); },
  };
  return c;
}

function leaderFlag(initial: boolean): LeaderStatus & { set(v: boolean): void } {
  let v = initial;
  const cbs = new Set<(l: boolean) => void>();
  return {
    isLeader: () => v,
    onChange: (cb) => { cbs.add(cb); return () => cbs.delete(cb); },
    set(nv) { v = nv; for (const cb of cbs) cb(nv); },
  };
}

async function withCa(fn: (ca: Awaited<ReturnType<typeof createCertificateAuthority>>, clock: ReturnType<typeof fakeClock>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-root-rotation-'));
  try {
    const clock = fakeClock();
    const ca = await createCertificateAuthority(dir, { trustDomain: 'mesh.test', now: () => clock.t, rootTtlMs: ROOT_TTL });
    await fn(ca, clock);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('rootRotationDue: a third of the lifetime left, or twice the workload TTL', () => {
  assert.equal(rootRotationDue(0, 30 * DAY, 19 * DAY, DAY), false);
  assert.equal(rootRotationDue(0, 30 * DAY, 20 * DAY + 1, DAY), true);
  assert.equal(rootRotationDue(0, 300 * DAY, 100 * DAY, 100 * DAY), false);
  assert.equal(rootRotationDue(0, 300 * DAY, 100 * DAY + 1, 100 * DAY), true);
});

test('the leader rotates exactly once when the signing root is due, checking hourly', async () => {
  await withCa(async (ca, clock) => {
    const leader = leaderFlag(true);
    const duty = startRootRotation({ ca: { ca }, leader, workloadTtlMs: () => DAY, clock });
    try {
      assert.equal(await duty.check(), 'not-due');
      assert.equal(clock.ticks.size, 1, 'one hourly timer');
      clock.tick(19 * DAY);
      assert.equal(await duty.check(), 'not-due');
      assert.equal(ca.material.roots.length, 1);
      // Past two thirds of the lifetime: the next hourly tick rotates.
      clock.t += 1 * DAY;
      clock.tick(HOUR);
      await duty.check(); // waits for the tick's check (or runs a no-op one)
      assert.equal(ca.material.roots.length, 2, 'a new root joined the bundle');
      assert.equal(ca.material.signer.rootId, ca.material.roots[0]!.id, 'the old root still signs');
      for (let i = 0; i < 5; i++) {
        clock.tick(HOUR);
        assert.equal(await duty.check(), 'in-progress');
      }
      assert.equal(ca.material.roots.length, 2, 'rotated exactly once');
    } finally {
      duty.close();
    }
    assert.equal(clock.ticks.size, 0, 'close() stops the timer');
  });
});

test('a non-leader never rotates; it does once it becomes leader', async () => {
  await withCa(async (ca, clock) => {
    const leader = leaderFlag(false);
    clock.t += 25 * DAY; // due
    const duty = startRootRotation({ ca: { ca }, leader, workloadTtlMs: () => DAY, clock });
    try {
      for (let i = 0; i < 3; i++) {
        clock.tick(HOUR);
        assert.equal(await duty.check(), 'not-leader');
      }
      assert.equal(ca.material.roots.length, 1);
      leader.set(true); // checks at once
      await duty.check();
      assert.equal(ca.material.roots.length, 2);
    } finally {
      duty.close();
    }
  });
});

test('twice the workload TTL brings rotation forward', async () => {
  await withCa(async (ca, clock) => {
    clock.t += 12 * DAY; // 18 days left: more than a third, less than 2 × 10 days
    const duty = startRootRotation({ ca: { ca }, leader: leaderFlag(true), workloadTtlMs: () => 10 * DAY, clock });
    try {
      await duty.check();
      assert.equal(ca.material.roots.length, 2);
    } finally {
      duty.close();
    }
  });
});

test('supplied CA material is never rotated', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-root-rotation-'));
  try {
    const clock = fakeClock();
    const made = await generateRoot('mesh.test', 1, T0, ROOT_TTL);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'r.pem'), made.certPem);
    await writeFile(join(dir, 'k.pem'), made.keyPem);
    const ca = await createCertificateAuthority(join(dir, 'data'), { trustDomain: 'mesh.test', now: () => clock.t, supplied: { rootCertFile: join(dir, 'r.pem'), rootKeyFile: join(dir, 'k.pem') } });
    clock.t += 25 * DAY;
    const duty = startRootRotation({ ca: { ca }, leader: leaderFlag(true), workloadTtlMs: () => DAY, clock });
    try {
      assert.equal(await duty.check(), 'supplied');
      assert.equal(ca.material.roots.length, 1);
    } finally {
      duty.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

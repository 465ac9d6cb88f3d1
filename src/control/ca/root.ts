import { randomBytes } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { x509 } from '../../lib/identity/x509.js';
import { WeftError } from '../../lib/errors.js';
import { parseCertificate, inspectCertificate } from '../../lib/identity/cert.js';
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, type Algorithm, type SigningKey } from '../../lib/identity/keys.js';
import { splitPem } from '../../lib/identity/pem.js';
import { trustDomainProblem } from '../../lib/identity/spiffe.js';
import { ensurePrivateDir, errnoCode, readIfExists, writeFileAtomic } from './fs.js';
import { readRootState, writeRootState, type RootRecord, type RootState } from './state.js';

export const CA_SUBDIR = 'ca';
export const ROOT_CERT_FILE = 'root-cert.pem';
export const ROOT_KEY_FILE = 'root-key.pem';
/** All trusted roots as one PEM, derived from roots.json, for operators and `curl --cacert`. */
export const BUNDLE_FILE = 'bundle.pem';
export const DAY_MS = 86_400_000;
/** Ten years, leap days included. */
export const ROOT_TTL_MS = 3653 * DAY_MS;
/** Certificates start this much in the past, so a peer whose clock is a little behind accepts them. */
export const CLOCK_SKEW_MS = 60_000;

/** Milliseconds since the epoch; injected so tests control time. */
export type Now = () => number;

/**
 * CA material supplied by the operator as PEM files: a root with its key (the
 * root signs), or a root certificate plus an intermediate certificate and key
 * (the intermediate signs; the root key stays offline, e.g. in a corporate PKI).
 */
export type SuppliedCaFiles =
  | { rootCertFile: string; rootKeyFile: string }
  | { rootCertFile: string; intermediateCertFile: string; intermediateKeyFile: string };

export interface LoadCaOptions {
  /** SPIFFE trust domain, e.g. `cluster.local`. */
  trustDomain: string;
  supplied?: SuppliedCaFiles;
  now?: Now;
  /** Lifetime of a generated root (default 10 years). */
  rootTtlMs?: number;
}

export interface TrustedRoot {
  id: string;
  generation: number;
  cert: x509.X509Certificate;
  certPem: string;
  /** Absent for a supplied root when an intermediate signs. */
  key?: SigningKey;
  createdAt: number;
  /** Every leaf this root signed expires by then (generated roots only). */
  coveredUntil?: number;
}

export interface CaSigner {
  cert: x509.X509Certificate;
  certPem: string;
  key: SigningKey;
  /** What a workload presents after its leaf: the intermediate, or nothing when a root signs. */
  chainTailPem: string[];
  /** The trusted root this signer chains to. */
  rootId: string;
  /** Hex key identifier of the signer, written as AKI into what it signs. */
  keyId: string;
}

/** Everything the CA signs and trusts with. Mutated only through bundle.ts (rotation). */
export interface CaMaterial {
  /** `DATA_DIR/ca`. */
  dir: string;
  trustDomain: string;
  source: 'generated' | 'supplied';
  /** Trusted roots, oldest first: the trust bundle. */
  roots: TrustedRoot[];
  signer: CaSigner;
  now: Now;
  /** Runs state changes one at a time (rotation and coverage writes). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export function rootSubject(trustDomain: string, generation: number): string {
  return `O=Weft, CN=Weft Root CA ${trustDomain}${generation > 1 ? ` G${generation}` : ''}`;
}

/** A new self-signed root: ECDSA P-256, CA:true and keyCertSign+cRLSign (both critical), SKI = AKI. */
export async function generateRoot(trustDomain: string, generation: number, now: number, ttlMs?: number): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: rootSubject(trustDomain, generation),
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + (ttlMs ?? ROOT_TTL_MS)),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as Algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
  return { certPem: normalisePem(cert.toString('pem')), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** 128 random bits, hex: unguessable serials are what CAs after the MD5 collision attacks use. */
export function randomSerial(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Open the CA of a data directory: `DIR/ca/` (0700). With `supplied`, the
 * operator's PEM files are validated and used; otherwise the generated root
 * is reused, or made on first start (`root-cert.pem`, `root-key.pem` 0600).
 * One control plane per data directory: the store's directory lock holds that.
 */
export async function loadOrCreateCa(dataDir: string, opts: LoadCaOptions): Promise<CaMaterial> {
  const td = trustDomainProblem(opts.trustDomain);
  if (td !== undefined) throw new WeftError('WEFT_ERR_INVALID', `trust domain ${JSON.stringify(opts.trustDomain)}: ${td}`);
  const now = opts.now ?? Date.now;
  const dir = join(dataDir, CA_SUBDIR);
  await ensurePrivateDir(dir);
  const base = { dir, trustDomain: opts.trustDomain, now, exclusive: serialRunner() };
  if (opts.supplied !== undefined) {
    const { roots, signer } = await loadSupplied(opts.supplied, now());
    return { ...base, source: 'supplied', roots, signer };
  }
  let state = await readRootState(dir);
  if (state === undefined) state = await adoptOrCreateFirstRoot(dir, opts.trustDomain, now(), opts.rootTtlMs);
  const roots = await loadGeneratedRoots(dir, state, now());
  await writeBundleFile(dir, roots);
  return { ...base, source: 'generated', roots, signer: await signerFor(roots, state.signing) };
}

/** Rewrite `bundle.pem` from the trusted roots (atomic). */
export async function writeBundleFile(dir: string, roots: readonly TrustedRoot[]): Promise<void> {
  await writeFileAtomic(join(dir, BUNDLE_FILE), roots.map((r) => r.certPem).join(''));
}

export async function signerFor(roots: readonly TrustedRoot[], id: string): Promise<CaSigner> {
  const root = roots.find((r) => r.id === id);
  if (root?.key === undefined) throw new WeftError('WEFT_ERR_INTERNAL', `signing root ${id} has no key`);
  return { cert: root.cert, certPem: root.certPem, key: root.key, chainTailPem: [], rootId: root.id, keyId: await keyIdOf(root.cert) };
}

/** The SKI of a certificate, or (when it has none) the RFC 5280 method-1 identifier of its key. */
export async function keyIdOf(cert: x509.X509Certificate): Promise<string> {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski !== null) return ski.keyId;
  return Buffer.from(await cert.publicKey.getKeyIdentifier()).toString('hex');
}

/**
 * No roots.json yet: a first start, or a crash during one. A complete pair of
 * root files (each was written atomically, key first) is adopted; a key with
 * no certificate was never used and is replaced; a certificate with no key is
 * refused rather than silently replaced, since workloads may trust it.
 */
async function adoptOrCreateFirstRoot(dir: string, trustDomain: string, now: number, ttlMs?: number): Promise<RootState> {
  const certPath = join(dir, ROOT_CERT_FILE);
  const keyPath = join(dir, ROOT_KEY_FILE);
  const [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if (certPem !== undefined && keyPem === undefined) {
    throw new WeftError('WEFT_ERR_INVALID', `${certPath} exists but ${keyPath} does not: restore the key, or remove both to have a new root made`);
  }
  let createdAt = now;
  if (certPem === undefined) {
    const made = await generateRoot(trustDomain, 1, now, ttlMs);
    await writeFileAtomic(keyPath, made.keyPem);
    await writeFileAtomic(certPath, made.certPem);
  } else {
    createdAt = parseCertificate(certPem, certPath).notBefore.getTime() + CLOCK_SKEW_MS;
  }
  const state: RootState = {
    version: 1,
    roots: [{ id: 'root', generation: 1, cert: ROOT_CERT_FILE, key: ROOT_KEY_FILE, createdAt: new Date(createdAt).toISOString() }],
    signing: 'root',
  };
  await writeRootState(dir, state);
  return state;
}

async function loadGeneratedRoots(dir: string, state: RootState, now: number): Promise<TrustedRoot[]> {
  const out: TrustedRoot[] = [];
  for (const rec of state.roots) out.push(await loadGeneratedRoot(dir, rec, now, rec.id === state.signing));
  return out;
}

async function loadGeneratedRoot(dir: string, rec: RootRecord, now: number, signs: boolean): Promise<TrustedRoot> {
  const certPath = join(dir, rec.cert);
  const keyPath = join(dir, rec.key);
  const certPem = await readRequired(certPath, 'root certificate');
  const cert = parseCertificate(certPem, `root certificate ${certPath}`);
  // A trusted root that no longer signs may have expired harmlessly; the signer may not.
  const keyPem = signs ? await readRequired(keyPath, 'root key') : await readIfExists(keyPath);
  const key = keyPem === undefined ? undefined : await importPrivateKeyPem(keyPem, `root key ${keyPath}`);
  await checkCaCertificate(cert, `root certificate ${certPath}`, signs ? now : undefined);
  if (key !== undefined) checkKeyMatches(cert, key, `root key ${keyPath}`, `root certificate ${certPath}`);
  const root: TrustedRoot = { id: rec.id, generation: rec.generation, cert, certPem: normalisePem(certPem), createdAt: Date.parse(rec.createdAt) };
  if (key !== undefined) root.key = key;
  if (rec.coveredUntil !== undefined) root.coveredUntil = Date.parse(rec.coveredUntil);
  return root;
}

async function loadSupplied(files: SuppliedCaFiles, now: number): Promise<{ roots: TrustedRoot[]; signer: CaSigner }> {
  const rootWhat = `root certificate ${files.rootCertFile}`;
  const rootPem = await readRequired(files.rootCertFile, 'root certificate');
  const rootCert = parseCertificate(rootPem, rootWhat);
  await checkCaCertificate(rootCert, rootWhat, now);
  if (!(await rootCert.isSelfSigned())) {
    throw new WeftError('WEFT_ERR_INVALID', `${rootWhat} is not self-signed: supply the top of the chain as the root, and the certificate below it as the intermediate`);
  }
  const root: TrustedRoot = { id: 'supplied', generation: 1, cert: rootCert, certPem: normalisePem(rootPem), createdAt: rootCert.notBefore.getTime() };
  if ('rootKeyFile' in files) {
    const key = await importPrivateKeyPem(await readRequired(files.rootKeyFile, 'root key'), `root key ${files.rootKeyFile}`);
    checkKeyMatches(rootCert, key, `root key ${files.rootKeyFile}`, rootWhat);
    root.key = key;
    return { roots: [root], signer: await signerFor([root], root.id) };
  }
  const interWhat = `intermediate certificate ${files.intermediateCertFile}`;
  const interPem = await readRequired(files.intermediateCertFile, 'intermediate certificate');
  const inter = parseCertificate(interPem, interWhat);
  await checkCaCertificate(inter, interWhat, now);
  const signedByRoot = inter.issuer === rootCert.subject
    && await inter.verify({ publicKey: rootCert.publicKey, signatureOnly: true }).catch(() => false);
  if (!signedByRoot) throw new WeftError('WEFT_ERR_INVALID', `${interWhat} is not signed by ${rootWhat}`);
  const rootBc = rootCert.getExtension(x509.BasicConstraintsExtension);
  if (rootBc?.pathLength === 0) throw new WeftError('WEFT_ERR_INVALID', `${rootWhat} has pathLenConstraint 0, so it cannot have an intermediate`);
  const interBc = inter.getExtension(x509.BasicConstraintsExtension);
  if (interBc?.pathLength !== undefined && interBc.pathLength < 0) throw new WeftError('WEFT_ERR_INVALID', `${interWhat} has a negative path length`);
  const key = await importPrivateKeyPem(await readRequired(files.intermediateKeyFile, 'intermediate key'), `intermediate key ${files.intermediateKeyFile}`);
  checkKeyMatches(inter, key, `intermediate key ${files.intermediateKeyFile}`, interWhat);
  const interNormal = normalisePem(interPem);
  return {
    roots: [root],
    signer: { cert: inter, certPem: interNormal, key, chainTailPem: [interNormal], rootId: root.id, keyId: await keyIdOf(inter) },
  };
}

/** A CA certificate: basic constraints cA=true, keyCertSign if key usage is present, valid at `now` (when given). */
export async function checkCaCertificate(cert: x509.X509Certificate, what: string, now?: number): Promise<void> {
  const info = inspectCertificate(cert);
  if (!info.isCa) throw new WeftError('WEFT_ERR_INVALID', `${what} is not a CA certificate (basic constraints cA is not true)`);
  if (info.keyUsage !== undefined && (info.keyUsage & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new WeftError('WEFT_ERR_INVALID', `${what} may not sign certificates (key usage lacks keyCertSign)`);
  }
  if (now !== undefined) {
    if (now > info.notAfter.getTime()) throw new WeftError('WEFT_ERR_INVALID', `${what} expired on ${info.notAfter.toISOString()}`);
    // Tolerate a certificate made a moment ago on a machine whose clock runs a little ahead.
    if (now + CLOCK_SKEW_MS < info.notBefore.getTime()) throw new WeftError('WEFT_ERR_INVALID', `${what} is not valid before ${info.notBefore.toISOString()}`);
  }
}

export function checkKeyMatches(cert: x509.X509Certificate, key: SigningKey, keyWhat: string, certWhat: string): void {
  if (!Buffer.from(cert.publicKey.rawData).equals(key.publicKeySpki)) {
    throw new WeftError('WEFT_ERR_INVALID', `${keyWhat} does not match ${certWhat} (different public key)`);
  }
}

async function readRequired(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const why = errnoCode(e) === 'ENOENT' ? 'does not exist' : errnoCode(e) === 'EACCES' ? 'is not readable' : 'cannot be read';
    throw new WeftError('WEFT_ERR_INVALID', `${what} ${path} ${why}`, { cause: e });
  }
}

/** The one CERTIFICATE block of a PEM text, newline-terminated (drops comments openssl may write). */
function normalisePem(pem: string): string {
  return splitPem(pem, 'CERTIFICATE')[0] ?? pem;
}

/** Delete a file, ignoring one that is already gone. */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

function serialRunner(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

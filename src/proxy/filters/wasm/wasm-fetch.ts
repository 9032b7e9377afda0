// Istio's agent beside Envoy, for WasmPlugins (istio's pkg/wasm): a Wasm filter whose code.remote
// names no cluster (istiod's placeholder "_") is fetched by rig proxy itself, from http(s):// with
// fetch or from an oci:// image (oci-registry.ts), checked against its sha256 when one is given,
// and kept in a module cache on disk that the filter then reads as local code. As the agent's cache:
// - a module is kept under sha256(name)/<checksum>.wasm, name the url (an oci url without its tag or
//   digest), checksum the module's sha256 (http) or the image manifest's (oci);
// - with a sha256 (or an oci url @sha256:…) a cached module of that checksum is used as is;
// - without, the checksum last fetched for the url is used, unless the pull policy is Always (or
//   unset for an oci url tagged :latest) and the WasmPlugin's resource version changed since: then
//   it is fetched again (for oci, the manifest; the layers only when its digest is new);
// - modules untouched for 24 h (WASM_MODULE_EXPIRY) are removed, checked every hour (WASM_PURGE_INTERVAL).
// A fetch is shared by the requests alike made while it runs (config versions of one plugin); it is
// aborted (its connection closed, no further try) once every one of them stopped waiting, as when
// the listener versions that needed it were dropped while they warmed.
// Directory: $RIG_WASM_CACHE_DIR, else <tmpdir>/rig-wasm-<uid>; files are written whole (rename).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { envDurationSeconds } from '../../../core/go-duration.ts';
import { httpGet } from './wasm-fetch-http.ts';
import { isWasm, unbox } from './wasm-fetch-archive.ts';
import { parseImageRef, prepareImage } from './oci-registry.ts';

export type PullPolicy = 'UNSPECIFIED_POLICY' | 'IfNotPresent' | 'Always';

export interface ModuleRequest {
  readonly url: string;
  /** The expected sha256 (hex): of the module for http(s), of the image manifest for oci; '' when not given. */
  readonly sha256: string;
  readonly timeoutMs: number;
  readonly pullPolicy: PullPolicy;
  /** A docker config (ISTIO_META_WASM_IMAGE_PULL_SECRET); undefined pulls anonymously. */
  readonly pullSecret: string | undefined;
  /** The plugin's name and its WasmPlugin's resource version (ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION). */
  readonly resourceName: string;
  readonly resourceVersion: string;
}

/** Larger modules (or layers) are refused. */
export const MAX_MODULE_BYTES = 256 << 20;
/**
 * Istio's agent's settings, from its environment variables with its defaults: one HTTP request may
 * take WASM_HTTP_REQUEST_TIMEOUT (15s) and is tried WASM_HTTP_REQUEST_MAX_RETRIES times (5; 500 ms
 * backoff, doubling) within the fetch's timeout; modules untouched for WASM_MODULE_EXPIRY (24h) are
 * removed, checked every WASM_PURGE_INTERVAL (1h). A value that does not parse fails the fetch,
 * naming the variable.
 */
function agentSettings() {
  return {
    requestTimeoutMs: envDurationSeconds('WASM_HTTP_REQUEST_TIMEOUT', 15) * 1000,
    maxAttempts: envCount('WASM_HTTP_REQUEST_MAX_RETRIES', 5),
    moduleExpiryMs: envDurationSeconds('WASM_MODULE_EXPIRY', 24 * 3600) * 1000,
    purgeIntervalMs: envDurationSeconds('WASM_PURGE_INTERVAL', 3600) * 1000,
  };
}

function envCount(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: "${v}" is not a whole number of at least 1`);
  return n;
}

/** A fetch under way: its outcome, how to abort it, and how many callers wait for it. */
interface Inflight {
  readonly done: Promise<string>;
  readonly cancel: AbortController;
  waiting: number;
}

interface ModuleEntry {
  readonly file: string;
  last: number;
}

interface ChecksumEntry {
  checksum: string;
  /** Resource version of each plugin using the url when it was last fetched or used. */
  readonly versions: Map<string, string>;
}

/** The module's cache name: the url, without an oci url's tag or digest. */
function moduleName(url: string): string {
  if (!url.startsWith('oci://')) return url;
  const r = parseImageRef(url.slice('oci://'.length));
  return `oci://${r.registry}/${r.repository}`;
}

function urlDigest(url: string): string {
  return /^oci:\/\/.*@sha256:([0-9a-f]{64})$/.exec(url)?.[1] ?? '';
}

/** IfNotPresent (the default, except an oci url tagged :latest) uses what the cache has, whatever the resource version. */
function ignoresVersion(req: ModuleRequest): boolean {
  if (req.pullPolicy === 'Always') return false;
  if (req.pullPolicy === 'IfNotPresent') return true;
  return !(req.url.startsWith('oci://') && req.url.endsWith(':latest'));
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

export class WasmModuleCache {
  readonly #dir: string;
  readonly #modules = new Map<string, ModuleEntry>();
  readonly #checksums = new Map<string, ChecksumEntry>();
  readonly #inflight = new Map<string, Inflight>();
  #purging = false;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The cached module file for the request, without fetching; undefined when it has to be fetched. */
  lookup(req: ModuleRequest): string | undefined {
    const name = moduleName(req.url);
    let checksum = req.sha256 || urlDigest(req.url);
    if (!checksum) {
      const known = this.#checksums.get(req.url);
      if (known && (ignoresVersion(req) || known.versions.get(req.resourceName) === req.resourceVersion)) checksum = known.checksum;
    }
    const entry = checksum ? this.#modules.get(JSON.stringify([name, checksum])) : undefined;
    if (!entry || !fs.existsSync(entry.file)) return undefined;
    entry.last = Date.now();
    this.#remember(req, checksum);
    return entry.file;
  }

  /**
   * Fetches the module into the cache (one fetch for requests alike at once); resolves to its file.
   * `signal` ends this caller's wait (rejecting with its reason); the fetch is aborted once no
   * caller waits for it any more (a caller without a signal waits to the end).
   */
  fetch(req: ModuleRequest, signal?: AbortSignal): Promise<string> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const key = JSON.stringify([req.url, req.sha256, req.resourceName, req.resourceVersion, req.pullPolicy, req.pullSecret ?? null]);
    let f = this.#inflight.get(key);
    if (!f) {
      const cancel = new AbortController();
      const done = this.#fetch(req, cancel.signal).finally(() => {
        if (this.#inflight.get(key) === f) this.#inflight.delete(key);
      });
      f = { done, cancel, waiting: 0 };
      this.#inflight.set(key, f);
    }
    const shared = f;
    shared.waiting++;
    if (!signal) return shared.done;
    return new Promise((resolve, reject) => {
      const stop = () => {
        reject(signal.reason as Error);
        if (--shared.waiting > 0) return;
        // Nobody waits any more: the download stops, and a later request fetches anew.
        if (this.#inflight.get(key) === shared) this.#inflight.delete(key);
        shared.cancel.abort(new Error(`no config waits for ${req.url} any more`));
      };
      signal.addEventListener('abort', stop, { once: true });
      shared.done.then(
        (file) => {
          signal.removeEventListener('abort', stop);
          resolve(file);
        },
        (e: Error) => {
          signal.removeEventListener('abort', stop);
          reject(e);
        },
      );
    });
  }

  async #fetch(req: ModuleRequest, cancel: AbortSignal): Promise<string> {
    const signal = AbortSignal.any([AbortSignal.timeout(req.timeoutMs), cancel]);
    const name = moduleName(req.url);
    const expected = req.sha256 || urlDigest(req.url);
    const scheme = req.url.slice(0, req.url.indexOf(':'));
    let bytes: Buffer;
    let checksum: string;
    if (scheme === 'http' || scheme === 'https') {
      bytes = unbox(await fetchHttp(req.url, signal), MAX_MODULE_BYTES);
      checksum = sha256(bytes);
      if (expected && checksum !== expected) throw new Error(`the module downloaded from ${req.url} has sha256 ${checksum}, not the configured ${expected}`);
    } else if (scheme === 'oci') {
      if (req.pullSecret === '') throw new Error(`cannot pull ${req.url}: its imagePullSecret was not found (missing image pulling secret)`);
      const image = await prepareImage(req.url.slice('oci://'.length), { pullSecret: req.pullSecret, signal, limit: MAX_MODULE_BYTES }).catch((e: Error) => {
        throw new Error(`cannot pull ${req.url}: ${e.message}`, { cause: e });
      });
      checksum = image.digest;
      if (expected && checksum !== expected) throw new Error(`the image ${req.url} has digest sha256:${checksum}, not the configured ${expected}`);
      const cached = this.#modules.get(JSON.stringify([name, checksum]));
      if (cached && fs.existsSync(cached.file)) {
        cached.last = Date.now();
        this.#remember(req, checksum);
        return cached.file;
      }
      bytes = await image.pull().catch((e: Error) => {
        throw new Error(`cannot pull ${req.url}: ${e.message}`, { cause: e });
      });
    } else throw new Error(`cannot fetch ${req.url}: rig proxy fetches Wasm modules over http://, https:// and oci:// only`);
    if (!isWasm(bytes)) throw new Error(`what was fetched from ${req.url} is not a Wasm module (no \\0asm header)`);
    const file = this.#write(name, checksum, bytes);
    this.#modules.set(JSON.stringify([name, checksum]), { file, last: Date.now() });
    this.#remember(req, checksum);
    this.#schedulePurge();
    return file;
  }

  #remember(req: ModuleRequest, checksum: string): void {
    if (req.url.startsWith('oci://') && req.url.includes('@')) return;
    let e = this.#checksums.get(req.url);
    if (!e) this.#checksums.set(req.url, (e = { checksum, versions: new Map() }));
    e.checksum = checksum;
    e.versions.set(req.resourceName, req.resourceVersion);
  }

  #write(name: string, checksum: string, bytes: Buffer): string {
    const dir = path.join(this.#dir, sha256(Buffer.from(name)));
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${checksum}.wasm`);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, bytes, { mode: 0o600 });
    fs.renameSync(tmp, file);
    return file;
  }

  #schedulePurge(): void {
    if (this.#purging) return;
    const { moduleExpiryMs, purgeIntervalMs } = agentSettings();
    this.#purging = true;
    setInterval(() => this.purge(Date.now() - moduleExpiryMs), purgeIntervalMs).unref();
  }

  /** Removes the modules untouched since `before` (ms since the epoch), and what points to them. */
  purge(before: number): void {
    for (const [key, m] of this.#modules) {
      if (m.last >= before) continue;
      fs.rmSync(m.file, { force: true });
      this.#modules.delete(key);
      const checksum = (JSON.parse(key) as string[])[1];
      for (const [url, c] of this.#checksums) if (c.checksum === checksum) this.#checksums.delete(url);
    }
  }
}

/** GET with Istio's agent's retries: network errors and 5xx (but 501, 505, 511) are tried again, with backoff, until the fetch's timeout. */
async function fetchHttp(url: string, signal: AbortSignal): Promise<Buffer> {
  const { requestTimeoutMs, maxAttempts } = agentSettings();
  let last: Error | undefined;
  let backoff = 500;
  let attempts = 0;
  while (attempts < maxAttempts && !signal.aborted) {
    attempts++;
    try {
      const res = await httpGet(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(requestTimeoutMs)]), limit: MAX_MODULE_BYTES, what: 'the Wasm module' });
      if (res.status === 200) return res.body;
      last = new Error(`GET ${url} answered ${res.status}`);
      if (res.status < 500 || [501, 505, 511].includes(res.status)) break;
    } catch (e) {
      if (!(signal.aborted && last)) last = e as Error;
      // Not transient: too large, a blocked address, a certificate that does not verify.
      if (/more than the|connection blocked|CERT_|SELF_SIGNED/.test(last.message)) break;
    }
    if (attempts < maxAttempts) await sleep(backoff, signal);
    backoff *= 2;
  }
  const why = signal.aborted ? ` (gave up at the fetch's timeout after ${attempts} attempt(s))` : attempts > 1 ? ` (after ${attempts} attempts)` : '';
  throw new Error(`${last?.message ?? `GET ${url} failed`}${why}`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function defaultDir(): string {
  return process.env.RIG_WASM_CACHE_DIR || path.join(os.tmpdir(), `rig-wasm-${process.getuid?.() ?? 'user'}`);
}

/** The proxy's module cache (one per process, as the agent's). */
export const moduleCache = new WasmModuleCache(defaultDir());

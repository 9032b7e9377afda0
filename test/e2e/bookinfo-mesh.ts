// Bookinfo on a real local mesh for the task tests: `rig demo --no-traffic` with the ingress
// gateway's port 8080 remapped to a free port, plus helpers to drive it the way Istio's task
// documentation does (browse /productpage, sign in as jason, apply YAML, read proxy stats).
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { REPO_ROOT } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';
import { DEMO_PATHS } from '../../src/local/demo.ts';
import { ingressGatewayPort, startMesh, type Mesh } from '../local/mesh-harness.ts';

export const NETWORKING = path.join(REPO_ROOT, 'examples/bookinfo/networking');

/** `--mesh-config` of the tests that read their proxies' cluster stats (Istio's proxies keep none by default). */
export const CLUSTER_STATS_MESH_CONFIG = path.join(REPO_ROOT, 'test/e2e/cluster-stats-mesh.yaml');

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

export function request(port: number, p: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<Response> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p}: no answer in ${opts.timeoutMs ?? 20_000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * `rig up` of Bookinfo with an egress gateway task's YAML (the ingress gateway on a free port, its
 * `gatewayPort` too); once every process, the egress gateway too, is ready, applies `serviceEntry`.
 */
export async function startEgressGatewayTask(taskYaml: string, gatewayPort: number, serviceEntry: string): Promise<Mesh> {
  const mesh = await startMesh('up', ['-f', ...DEMO_PATHS, taskYaml, '--mesh-config', CLUSTER_STATS_MESH_CONFIG], { gatewayPorts: [8080, gatewayPort] });
  try {
    await mesh.waitFor((s) => !!s.readyAt && !!s.processes.find((p) => p.name === 'istio-egressgateway'), 'every process ready, the egress gateway too', 60_000);
    const applied = await mesh.rig(['apply', '-f', '-'], serviceEntry);
    if (applied.code !== 0) throw new Error(`rig apply of the ServiceEntry failed: ${applied.stderr}`);
    return mesh;
  } catch (err) {
    await mesh.stop();
    throw err;
  }
}

/** GET over TLS with SNI and Host `servername`, trusting `ca`; with the common name of the certificate the server presented. */
export function httpsGet(port: number, p: string, servername: string, ca: string): Promise<{ status: number; body: string; peerCN: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, servername, headers: { host: servername }, ca, agent: false, timeout: 5000 }, (res) => {
      const peerCN = String((res.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peerCN }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Envoy's cluster counter `cluster.<cluster>.<metric>` of a process, from its admin /stats (0 before
 * the first count). Not from /stats/prometheus: Istio's cluster_name tag cuts a name like
 * outbound|443||edition.cnn.com at its first dot there, as it does in Istio.
 */
export async function clusterCounter(mesh: Mesh, processName: string, metric: string, cluster: string): Promise<number> {
  const text = (await request(mesh.process(processName)!.ports.admin!, '/stats')).body;
  const line = text.split('\n').find((l) => l === `cluster.${cluster}.${metric}: ${l.slice(l.lastIndexOf(' ') + 1)}`);
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The reviews workload named on a product page, or what the page said instead. */
export function reviewsServedBy(html: string): string {
  const m = /Reviews served by: <b class="workload">(reviews-v\d)<\/b>/.exec(html);
  if (m) return m[1];
  if (html.includes('product reviews are currently unavailable')) return 'unavailable';
  return 'none';
}

/** waitFor at the pace of the e2e tests: every 200 ms, for 10 s unless told. */
export function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  return waitFor(what, fn, { timeoutMs, intervalMs: 200 });
}

export class Bookinfo {
  readonly mesh: Mesh;
  readonly gatewayPort: number;

  private constructor(mesh: Mesh, gatewayPort: number) {
    this.mesh = mesh;
    this.gatewayPort = gatewayPort;
  }

  static async start(args: string[] = []): Promise<Bookinfo> {
    const mesh = await startMesh('demo', ['--no-traffic', ...args]);
    try {
      const bi = new Bookinfo(mesh, await ingressGatewayPort(mesh, 8080, 'every Bookinfo process ready'));
      await eventually('the product page through the gateway', async () => ((await bi.page()).status === 200 ? true : undefined), 30_000);
      return bi;
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  }

  page(cookie?: string): Promise<Response> {
    return request(this.gatewayPort, '/productpage', { headers: cookie ? { cookie } : {} });
  }

  async login(user: string): Promise<string> {
    const res = await request(this.gatewayPort, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=${encodeURIComponent(user)}&passwd=password` });
    if (res.status !== 302) throw new Error(`login answered ${res.status}: ${res.body.slice(0, 200)}`);
    return String(res.headers['set-cookie']).split(';')[0];
  }

  /** Who serves reviews for `n` page loads. */
  async servedBy(n: number, cookie?: string): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const who = reviewsServedBy((await this.page(cookie)).body);
      counts[who] = (counts[who] ?? 0) + 1;
    }
    return counts;
  }

  /** `rig apply` a file of examples/bookinfo/networking, or YAML text. */
  async apply(fileOrYaml: string): Promise<void> {
    const isYaml = fileOrYaml.includes('\n');
    const res = await this.mesh.rig(['apply', '-f', isYaml ? '-' : path.join(NETWORKING, fileOrYaml)], isYaml ? fileOrYaml : undefined);
    if (res.code !== 0) throw new Error(`rig apply ${isYaml ? '-' : fileOrYaml} failed: ${res.stderr}`);
  }

  async delete(fileOrYaml: string): Promise<void> {
    const isYaml = fileOrYaml.includes('\n');
    const res = await this.mesh.rig(['delete', '-f', isYaml ? '-' : path.join(NETWORKING, fileOrYaml)], isYaml ? fileOrYaml : undefined);
    if (res.code !== 0) throw new Error(`rig delete failed: ${res.stderr}`);
  }

  /** The Prometheus text of a replica's sidecar (or a gateway). */
  async stats(name: string): Promise<string> {
    const p = this.mesh.process(name);
    if (!p?.ports.stats) throw new Error(`${name} has no stats port`);
    return (await request(p.ports.stats, '/stats/prometheus')).body;
  }

  stop(): Promise<void> {
    return this.mesh.stop();
  }
}

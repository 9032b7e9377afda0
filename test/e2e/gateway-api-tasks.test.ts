// Istio's traffic tasks, Gateway API tabs, on `rig demo --gateway-api` with the files of
// examples/bookinfo/gateway-api (the tasks' YAML, Workloads in place of Deployments): Egress
// Gateways (a Gateway of class istio as egress gateway, an HTTPRoute whose parent is the
// ServiceEntry cnn; for HTTPS a TLS Passthrough listener and TLSRoutes), Mirroring (httpbin-v1 answers, httpbin-v2 gets the copies) and TCP Traffic
// Shifting (tcp-echo through tcp-echo-gateway-istio, all to v1, then 80/20).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { listenLocal } from '../helpers/listen.ts';
import { startMesh, type Mesh } from '../local/mesh-harness.ts';
import { CLUSTER_STATS_MESH_CONFIG, eventually, request } from './bookinfo-mesh.ts';

const TASKS = path.join(REPO_ROOT, 'examples/bookinfo/gateway-api');
const file = (name: string) => path.join(TASKS, name);

/** One line through a TCP connection: what tcp-echo answered ('' when the connection closed first). */
function echo(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) s.end();
    });
    s.on('close', () => resolve(got.trim()));
    s.on('error', () => resolve(''));
  });
}

describe("Istio's traffic tasks, Gateway API tabs, on rig demo --gateway-api", () => {
  let mesh: Mesh;
  let standIn: http.Server;
  const cnnSeen: string[] = [];
  let outbound = 0;

  before(async () => {
    standIn = http.createServer((req, res) => {
      cnnSeen.push(`${req.headers.host} ${req.url}`);
      res.end('cnn stand-in');
    });
    const standInPort = await listenLocal(standIn);
    mesh = await startMesh('demo', ['--gateway-api', '--no-traffic', '--mesh-config', CLUSTER_STATS_MESH_CONFIG], { gatewayPorts: [80, 443, 31400] });
    await mesh.waitFor((s) => !!s.readyAt, 'the demo ready', 60_000);
    const se = readFileSync(path.join(REPO_ROOT, 'examples/bookinfo/tasks/egress-gateway/service-entry-local-standin.yaml'), 'utf8').replace('http-port: 18080', `http-port: ${standInPort}`);
    assert.equal((await mesh.rig(['apply', '-f', '-'], se)).code, 0);
    const applied = await mesh.rig(['apply', '-f', file('curl.yaml'), '-f', file('httpbin-v1-v2.yaml'), '-f', file('tcp-echo-services.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);
    const names = ['curl-0', 'httpbin-v1-0', 'httpbin-v2-0', 'tcp-echo-v1-0', 'tcp-echo-v2-0'];
    await mesh.waitFor((s) => names.every((n) => s.processes.find((p) => p.name === n)?.state === 'ready'), names.join(', '), 60_000);
    outbound = mesh.process('curl-0')!.ports.outbound!;
  });
  after(async () => {
    await mesh?.stop();
    standIn?.close();
    standIn?.closeAllConnections();
  });

  it('Egress Gateways: curl → sidecar → cnn-egress-gateway-istio → edition.cnn.com', async () => {
    const applied = await mesh.rig(['apply', '-f', file('egress-gateway-cnn.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);
    await mesh.waitFor((s) => s.processes.find((p) => p.name === 'cnn-egress-gateway-istio')?.state === 'ready', 'the egress gateway ready', 60_000);
    // Envoy's /stats: with Istio's stats_tags, Prometheus cuts this cluster's name at its first dot
    // (cluster_name="outbound|80||edition", as Istio does: istio/istio#39143).
    const viaGateway = async () => {
      const stats = (await request(mesh.process('cnn-egress-gateway-istio')!.ports.admin!, '/stats?filter=edition')).body;
      return Number(/^cluster\.outbound\|80\|\|edition\.cnn\.com\.upstream_rq_total: (\d+)$/m.exec(stats)?.[1] ?? 0);
    };
    await eventually('edition.cnn.com answered through the egress gateway', async () => {
      const r = await request(outbound, 'http://edition.cnn.com/politics', { headers: { host: 'edition.cnn.com' }, timeoutMs: 3000 });
      return r.status === 200 && (await viaGateway()) > 0 ? true : undefined;
    }, 30_000);
    const before_ = await viaGateway();
    for (let i = 0; i < 3; i++) assert.equal((await request(outbound, 'http://edition.cnn.com/politics', { headers: { host: 'edition.cnn.com' } })).body, 'cnn stand-in');
    assert.equal((await viaGateway()) - before_, 3, 'every call passed through the egress gateway');
    const route = JSON.parse((await mesh.rig(['get', 'httproute', 'direct-cnn-to-egress-gateway', '-o', 'json'])).stdout) as { status: { parents: { conditions: { type: string; status: string }[] }[] } };
    assert.deepEqual(route.status.parents[0].conditions.map((c) => `${c.type}=${c.status}`), ['Accepted=True', 'ResolvedRefs=True']);
  });

  it('Egress Gateways, HTTPS: curl CONNECTs to edition.cnn.com:443, the sidecar sends its TLS by SNI through cnn-egress-gateway-istio (passthrough)', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-gwapi-egress-https-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=edition.cnn.com', '-addext', 'subjectAltName=DNS:edition.cnn.com', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const ca = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    const server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: ca }, (_req, res) => res.end('cnn stand-in over TLS'));
    t.after(() => {
      server.close();
      server.closeAllConnections();
    });
    const port = await listenLocal(server);
    const se = readFileSync(path.join(REPO_ROOT, 'examples/bookinfo/tasks/egress-gateway/service-entry-local-standin-https.yaml'), 'utf8').replace('tls: 18443', `tls: ${port}`);
    assert.equal((await mesh.rig(['delete', '-f', file('egress-gateway-cnn.yaml')])).code, 0);
    assert.equal((await mesh.rig(['apply', '-f', '-'], se)).code, 0);
    const applied = await mesh.rig(['apply', '-f', file('egress-gateway-cnn-https.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);
    const agent = new https.Agent({ proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${outbound}` }, ca });
    const get = () =>
      new Promise<string>((resolve) => {
        https
          .get('https://edition.cnn.com/politics', { agent, timeout: 5000 }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve(`${res.statusCode} ${body}`));
          })
          .on('error', (err) => resolve(`error ${err.message}`))
          .on('timeout', function (this: { destroy(e: Error): void }) {
            this.destroy(new Error('timeout'));
          });
      });
    const viaGateway = async () => {
      const gateway = mesh.process('cnn-egress-gateway-istio');
      if (gateway?.state !== 'ready' || !gateway.ports.gateway?.['443']) return 0;
      const stats = (await request(gateway.ports.admin!, '/stats?filter=edition')).body;
      return Number(/^cluster\.outbound\|443\|\|edition\.cnn\.com\.upstream_cx_total: (\d+)$/m.exec(stats)?.[1] ?? 0);
    };
    await eventually('edition.cnn.com:443 answered through the egress gateway', async () => ((await get()) === '200 cnn stand-in over TLS' && (await viaGateway()) > 0 ? true : undefined), 60_000);
  });

  it('Mirroring: httpbin-v1 answers; with the RequestMirror filter, httpbin-v2 gets a copy of each request', async () => {
    const headersCalls = async (w: string) => ((await mesh.rig(['logs', w])).stdout.match(/GET \/headers 200/g) ?? []).length;
    assert.equal((await mesh.rig(['apply', '-f', file('mirror-httpbin-v1.yaml')])).code, 0);
    await eventually('httpbin answers through the route', async () => ((await request(outbound, 'http://httpbin:8000/headers', { timeoutMs: 3000 })).status === 200 ? true : undefined), 20_000);
    assert.equal((await mesh.rig(['apply', '-f', file('mirror-httpbin-v2.yaml')])).code, 0);
    await eventually('httpbin-v2 logs a mirrored request', async () => {
      await request(outbound, 'http://httpbin:8000/headers');
      return (await headersCalls('httpbin-v2')) > 0 ? true : undefined;
    }, 20_000);
    const [v1, v2] = [await headersCalls('httpbin-v1'), await headersCalls('httpbin-v2')];
    for (let i = 0; i < 3; i++) assert.match((await request(outbound, 'http://httpbin:8000/headers')).body, /"headers"/);
    await eventually('3 more on each', async () => ((await headersCalls('httpbin-v1')) === v1 + 3 && (await headersCalls('httpbin-v2')) === v2 + 3 ? true : undefined));
  });

  it('TCP Traffic Shifting: tcp-echo-all-v1 sends every connection to v1, tcp-echo-20-v2 some to v2', async () => {
    assert.equal((await mesh.rig(['apply', '-f', file('tcp-echo-all-v1.yaml')])).code, 0);
    await mesh.waitFor((s) => s.processes.find((p) => p.name === 'tcp-echo-gateway-istio')?.state === 'ready', 'tcp-echo-gateway-istio ready', 60_000);
    const port = Number(mesh.process('tcp-echo-gateway-istio')!.ports.gateway!['31400']);
    await eventually('tcp-echo answers', async () => ((await echo(port, 'hello')) === 'one hello' ? true : undefined), 20_000);
    for (let i = 0; i < 10; i++) assert.equal(await echo(port, `n${i}`), `one n${i}`);
    assert.equal((await mesh.rig(['apply', '-f', file('tcp-echo-20-v2.yaml')])).code, 0);
    await eventually('v2 takes some connections', async () => {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => echo(port, `m${i}`)));
      assert.ok(answers.every((a) => /^(one|two) m\d+$/.test(a)), answers.join(', '));
      return answers.some((a) => a.startsWith('two')) ? true : undefined;
    }, 20_000);
  });
});

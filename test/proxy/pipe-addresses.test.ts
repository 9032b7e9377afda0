// Envoy's pipe addresses (Unix domain sockets) in `rig proxy -c`: a listener bound on a socket
// path with Pipe.mode routes HTTP to STATIC clusters whose endpoints are pipes (HTTP/1.1, h2c,
// TLS); tcp_proxy listeners on pipes relay to an abstract-namespace (`@name`) endpoint and,
// originating TLS, to the TLS one. Stats and the admin's listener addresses name the pipes. Bad
// pipes are refused with the field.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { compileLoadAssignment } from '../../src/proxy/upstream/cluster-config.ts';
import { Issues } from '../../src/proxy/config/reader.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

const tcpProxy = (statPrefix: string, cluster: string) => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: statPrefix, cluster } });

const pipeCluster = (name: string, pipePath: string) => ({
  name,
  type: 'STATIC',
  connect_timeout: '1s',
  load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: pipePath } } } }] }] },
});

function bootstrap(listenerPath: string, appPath: string, abstractListener: string, abstractApp: string, h2Path: string, tls: { path: string; ca: string }) {
  const hcm = {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: { '@type': HCM, stat_prefix: 'pipe_http', http_filters: [ROUTER], route_config: { name: 'r', virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/h2' }, route: { cluster: 'h2-app' } }, { match: { prefix: '/tls' }, route: { cluster: 'tls-app' } }, { match: { prefix: '/' }, route: { cluster: 'app' } }] }] } },
  };
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        { name: 'pipe-http', address: { pipe: { path: listenerPath, mode: 0o600 } }, filter_chains: [{ filters: [hcm] }] },
        { name: 'abstract-tcp', address: { pipe: { path: abstractListener } }, filter_chains: [{ filters: [tcpProxy('abstract', 'abstract-app')] }] },
        { name: 'tls-tcp', address: { pipe: { path: `${listenerPath}.tls` } }, filter_chains: [{ filters: [tcpProxy('tls_tcp', 'tls-app')] }] },
      ],
      clusters: [pipeCluster('app', appPath), pipeCluster('abstract-app', abstractApp), { ...pipeCluster('h2-app', h2Path), http2_protocol_options: {} }, { ...pipeCluster('tls-app', tls.path), transport_socket: upstreamTls(tls.ca) }],
    },
  };
}

const upstreamTls = (ca: string) => ({
  name: 'envoy.transport_sockets.tls',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', sni: 'app.pipe', common_tls_context: { validation_context: { trusted_ca: { filename: ca }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'app.pipe' } }] } } },
});

/** An HTTP app on a Unix socket answering with the path it was reached on. */
async function startPipeApp(t: { after(fn: () => unknown): void }, where: string, name: string): Promise<void> {
  const server = http.createServer((req, res) => res.end(JSON.stringify({ app: name, path: req.url, host: req.headers.host })));
  await new Promise<void>((resolve) => server.listen(where, resolve));
  t.after(() => server.close());
}

function getOverPipe(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path: urlPath, headers: { host: 'pipe.local' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

function rawHttpOverPipe(socketPath: string, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: socketPath }, () => s.end(`GET ${urlPath} HTTP/1.0\r\nhost: abstract.local\r\n\r\n`));
    let data = '';
    s.setEncoding('utf8').on('data', (d: string) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

test('pipe listeners (mode, abstract namespace) and pipe endpoints carry HTTP and TCP', { skip: process.platform === 'linux' ? undefined : 'abstract Unix sockets need Linux' }, async (t) => {
  const dir = tempDir(t, 'rig-pipes-');
  const listenerPath = path.join(dir, 'listener.sock');
  const appPath = path.join(dir, 'app.sock');
  const tag = `rig-pipe-test-${process.pid}`;
  await startPipeApp(t, appPath, 'file');
  await startPipeApp(t, `\0${tag}-app`, 'abstract');
  // A stale file where the listener binds: removed first, as Envoy does.
  fs.writeFileSync(listenerPath, 'stale');
  const file = path.join(dir, 'envoy.json');
  const h2Path = path.join(dir, 'h2.sock');
  const h2 = http2.createServer((req, res) => res.end(JSON.stringify({ app: 'h2', version: req.httpVersion })));
  await new Promise<void>((resolve) => h2.listen(h2Path, resolve));
  t.after(() => h2.close());
  // HTTPS on a socket: TLS to a pipe endpoint, the server certificate checked for app.pipe.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=app.pipe', '-addext', 'subjectAltName=DNS:app.pipe', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const tlsPath = path.join(dir, 'tls.sock');
  const secure = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => res.end(JSON.stringify({ app: 'tls', sni: (req.socket as TLSSocket).servername })));
  await new Promise<void>((resolve) => secure.listen(tlsPath, resolve));
  t.after(() => secure.close());
  fs.writeFileSync(file, JSON.stringify(bootstrap(listenerPath, appPath, `@${tag}`, `@${tag}-app`, h2Path, { path: tlsPath, ca: path.join(dir, 'cert.pem') })));
  const proxy = await startRigProxyFromFile(t, file);

  const r = await waitFor('HTTP through the pipe listener', async () => {
    const res = await getOverPipe(listenerPath, '/through/pipes').catch(() => undefined);
    return res?.status === 200 ? res : undefined;
  });
  assert.deepEqual(JSON.parse(r.body), { app: 'file', path: '/through/pipes', host: 'pipe.local' });
  assert.ok(fs.statSync(listenerPath).isSocket());
  assert.equal(fs.statSync(listenerPath).mode & 0o777, 0o600);

  // h2c to a pipe endpoint (the HTTP/2 pool connects to the path).
  const viaH2 = await getOverPipe(listenerPath, '/h2');
  assert.deepEqual([viaH2.status, JSON.parse(viaH2.body)], [200, { app: 'h2', version: '2.0' }]);

  const viaTls = await getOverPipe(listenerPath, '/tls');
  assert.deepEqual([viaTls.status, JSON.parse(viaTls.body)], [200, { app: 'tls', sni: 'app.pipe' }]);

  // tcp_proxy originating TLS to the same pipe endpoint.
  assert.match(await rawHttpOverPipe(`${listenerPath}.tls`, '/tls-tcp'), /\r\n\r\n\{"app":"tls","sni":"app\.pipe"\}$/);

  const raw = await rawHttpOverPipe(`\0${tag}`, '/abstract');
  assert.match(raw, /^HTTP\/1\.[01] 200/);
  assert.match(raw, /"app":"abstract","path":"\/abstract"/);

  const stats = await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`)).text();
  assert.match(stats, /^cluster\.app\.upstream_cx_total: 1$/m);
  assert.match(stats, /^cluster\.abstract-app\.upstream_cx_total: 1$/m);
  assert.match(stats, new RegExp(`^listener\\.${listenerPath.replaceAll('.', '\\.')}\\.downstream_cx_total: [1-9]`, 'm'));
  const listeners = await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/listeners?format=json`)).json() as { listener_statuses: { name: string; local_address: unknown }[] };
  assert.deepEqual(listeners.listener_statuses.find((l) => l.name === 'pipe-http')?.local_address, { pipe: { path: listenerPath } });
});

test('bad pipe addresses are refused with the field', () => {
  const issues = new Issues();
  const la = (address: unknown) => ({ cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] });
  compileLoadAssignment(la({ pipe: { path: 'relative.sock' } }), 'cluster', issues);
  compileLoadAssignment(la({ pipe: { path: '@abstract', mode: 0o600 } }), 'cluster', issues);
  compileLoadAssignment(la({ pipe: { path: '/run/x.sock', mode: 0o1777 } }), 'cluster', issues);
  compileLoadAssignment(la({ pipe: {} }), 'cluster', issues);
  assert.equal(issues.errors.length, 4, issues.errors.join('\n'));
  assert.match(issues.errors[0]!, /pipe\.path: "relative\.sock" is not a pipe path/);
  assert.match(issues.errors[1]!, /pipe\.mode: a mode cannot be set on an abstract namespace pipe/);
  assert.match(issues.errors[2]!, /pipe\.mode: mode 1023 is out of range/);
  assert.match(issues.errors[3]!, /pipe\.path: a pipe needs a path/);
  const ok = compileLoadAssignment(la({ pipe: { path: '/run/app.sock' } }), 'cluster', new Issues());
  assert.deepEqual([ok.endpoints[0]!.address, ok.endpoints[0]!.port], ['/run/app.sock', 0]);
});

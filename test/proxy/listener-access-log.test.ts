// Listener.access_log in `rig proxy -c bootstrap.yaml`, as Envoy writes it: a connection that
// matches no filter chain (by SNI, by destination port) is logged once with NR and
// filter_chain_not_found and its downstream addresses; Istio's NR response_flag_filter keeps a
// matched connection out, while a log without filter writes it when it closes, with tcp_proxy's
// StreamInfo; connections the listener filters close (inspection timeout, a missing PROXY
// header) are logged too, and an HTTP connection when it closes, by its downstream side.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { test, type TestContext } from 'node:test';
import { stringify } from 'yaml';
import { FILE_ACCESS_LOG_TYPE, HCM_TYPE, PROXY_PROTOCOL_TYPE, TCP_PROXY_TYPE, TLS_INSPECTOR_TYPE } from '../../src/envoy/index.ts';
import { ISTIO_TEXT_FORMAT } from '../../src/xds/telemetry/telemetry-config.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const FIELDS = {
  flags: '%RESPONSE_FLAGS%',
  details: '%RESPONSE_CODE_DETAILS%',
  remote: '%DOWNSTREAM_REMOTE_ADDRESS%',
  local: '%DOWNSTREAM_LOCAL_ADDRESS%',
  sni: '%REQUESTED_SERVER_NAME%',
  cluster: '%UPSTREAM_CLUSTER%',
};
const NR_ONLY = { response_flag_filter: { flags: ['NR'] } };

function fileLog(file: string, format: Record<string, unknown>, filter?: Record<string, unknown>) {
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format: format }, ...(filter ? { filter } : {}) };
}

function listener(name: string, chains: Record<string, unknown>[], extra: Record<string, unknown>) {
  return { name, address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: chains, ...extra };
}

const tcpChain = (match: Record<string, unknown> = {}) => ({ filter_chain_match: match, filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: 'echo' } }] });
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const tlsInspector = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TLS_INSPECTOR_TYPE } };

/** A TCP upstream that reads, then closes. */
async function startSink(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.once('data', () => s.end());
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, connections: () => n };
}

/** Connects, sends a TLS ClientHello for `servername` (or `bytes`), and resolves with the client's port once the proxy closed the connection. */
function connect(port: number, send: { servername: string } | { bytes: string } | { nothing: true }): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('error', reject);
    s.once('connect', () => {
      const local = s.localPort!;
      s.off('error', reject);
      s.on('error', () => undefined);
      s.once('close', () => resolve(local));
      if ('servername' in send) tls.connect({ socket: s, servername: send.servername, rejectUnauthorized: false }).on('error', () => s.destroy());
      else if ('bytes' in send) s.write(send.bytes);
      s.resume();
    });
  });
}

function lines(file: string, n: number): Promise<string[]> {
  return waitFor(`${n} line(s) in ${path.basename(file)}`, () => {
    const all = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    return all.length >= n ? all : undefined;
  });
}

test('listener access_log: no filter chain (SNI, port) is NR filter_chain_not_found; the NR filter keeps matched connections out; listener filters closing a connection are logged', async (t) => {
  const dir = tempDir(t, 'rig-listener-log-');
  const sink = await startSink(t);
  const f = (name: string) => path.join(dir, name);
  const json = { json_format: FIELDS };
  const bootstrap = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      clusters: [{ name: 'echo', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'echo', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: sink.port } } } }] }] } }],
      listeners: [
        listener('sni', [tcpChain({ server_names: ['a.example'] })], { listener_filters: [tlsInspector], access_log: [fileLog(f('sni-nr.log'), json, NR_ONLY), fileLog(f('sni-all.log'), json)] }),
        listener('port', [tcpChain({ destination_port: 9 })], { access_log: [fileLog(f('port-nr.log'), { text_format_source: { inline_string: ISTIO_TEXT_FORMAT } }, NR_ONLY)] }),
        listener('timeout', [tcpChain()], { listener_filters: [tlsInspector], listener_filters_timeout: '0.2s', access_log: [fileLog(f('timeout.log'), json)] }),
        listener('http', [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM_TYPE, stat_prefix: 'http', http_filters: [ROUTER], route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 204 } }] }] } } }] }], { access_log: [fileLog(f('http.log'), json)] }),
        listener('pp', [tcpChain()], { listener_filters: [{ name: 'envoy.filters.listener.proxy_protocol', typed_config: { '@type': PROXY_PROTOCOL_TYPE } }], access_log: [fileLog(f('pp.log'), json)] }),
      ],
    },
  };
  const file = f('bootstrap.yaml');
  fs.writeFileSync(file, stringify(bootstrap));
  const proxy = await startRigProxyFromFile(t, file);
  assert.doesNotMatch(proxy.log(), /access_log/, 'no warning about the listener access_log');
  const port = proxy.ports.listeners;

  // SNI b.example: no chain. Logged once, with the downstream addresses and the SNI.
  const unmatched = await connect(port.sni, { servername: 'b.example' });
  const [nr] = await lines(f('sni-nr.log'), 1);
  assert.deepEqual(JSON.parse(nr), { flags: 'NR', details: 'filter_chain_not_found', remote: `127.0.0.1:${unmatched}`, local: `127.0.0.1:${port.sni}`, sni: 'b.example', cluster: null });

  // SNI a.example: relayed; only the log without filter has it, when it closed, from tcp_proxy.
  const matched = await connect(port.sni, { servername: 'a.example' });
  assert.equal(sink.connections(), 1);
  const all = await lines(f('sni-all.log'), 2);
  const relayed = JSON.parse(all[1]) as Record<string, unknown>;
  assert.equal(relayed.cluster, 'echo');
  assert.equal(relayed.sni, 'a.example');
  assert.doesNotMatch(String(relayed.flags), /NR/);
  assert.equal(JSON.parse(all[0]).flags, 'NR');
  // Another unmatched one: the NR log's next line is that one, not the matched connection.
  const again = await connect(port.sni, { servername: 'b.example' });
  const nrs = await lines(f('sni-nr.log'), 2);
  assert.equal(nrs.length, 2);
  assert.equal(JSON.parse(nrs[1]).remote, `127.0.0.1:${again}`);
  assert.notEqual(JSON.parse(nrs[1]).remote, `127.0.0.1:${matched}`);

  // Chains by destination port only: Istio's text format, as its listener log prints it.
  const plain = await connect(port.port, { bytes: 'hello' });
  const [text] = await lines(f('port-nr.log'), 1);
  assert.match(text, new RegExp(`^\\[\\S+\\] "- - -" 0 NR filter_chain_not_found - "-" 0 0 \\d+ - "-" "-" "-" "-" "-" - - 127\\.0\\.0\\.1:${port.port} 127\\.0\\.0\\.1:${plain} - -$`));

  // Listener filters: the inspector timing out, a connection without its PROXY header.
  const silent = await connect(port.timeout, { nothing: true });
  const [timedOut] = await lines(f('timeout.log'), 1);
  assert.deepEqual(JSON.parse(timedOut), { flags: '-', details: null, remote: `127.0.0.1:${silent}`, local: `127.0.0.1:${port.timeout}`, sni: null, cluster: null });
  const refused = await connect(port.pp, { bytes: 'GET / HTTP/1.1\r\n\r\n' });
  const [pp] = await lines(f('pp.log'), 1);
  assert.equal(JSON.parse(pp).remote, `127.0.0.1:${refused}`);
  assert.equal(sink.connections(), 1, 'none of the other connections reached the upstream');

  // An HTTP connection: its request has its own StreamInfo; the listener logs the connection's, downstream side only.
  const client = await new Promise<number>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: port.http, agent: false, headers: { connection: 'close' } }, (res) => {
      assert.equal(res.statusCode, 204);
      res.resume();
      res.once('end', () => resolve(req.socket!.localPort!));
    });
    req.once('error', reject);
  });
  const [conn] = await lines(f('http.log'), 1);
  assert.deepEqual(JSON.parse(conn), { flags: '-', details: null, remote: `127.0.0.1:${client}`, local: `127.0.0.1:${port.http}`, sni: null, cluster: null });
});

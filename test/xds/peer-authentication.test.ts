// PeerAuthentication precedence (Istio's documented examples) and auto mTLS towards servers that
// DISABLE mTLS: EDS marks such endpoints plaintext so the client's transport_socket_match skips TLS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE, checkMessage } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { workloadMtlsMode } from '../../src/xds/translate/peer-authentication.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, parseYaml, podSidecar } from './fixtures.ts';

function pa(name: string, ns: string, spec: string): string {
  return `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: ${name}, namespace: ${ns} }\nspec: ${spec}\n`;
}

function modes(yaml: string, ns: string, labels: Record<string, string>, ports: number[]): string[] {
  const push = buildPush(parseYaml(yaml));
  return ports.map((p) => workloadMtlsMode(push, ns, labels, p));
}

const finance = { app: 'finance' };

test('no policy: PERMISSIVE; mesh STRICT applies to every namespace; a namespace policy overrides it', () => {
  assert.deepEqual(modes('', 'foo', finance, [8080]), ['PERMISSIVE']);
  const mesh = pa('default', 'istio-system', '{ mtls: { mode: STRICT } }');
  assert.deepEqual(modes(mesh, 'foo', finance, [8080]), ['STRICT']);
  assert.deepEqual(modes(mesh + '---\n' + pa('default', 'foo', '{ mtls: { mode: PERMISSIVE } }'), 'foo', finance, [8080]), ['PERMISSIVE']);
  // UNSET (or no mtls at all) inherits the mesh policy.
  assert.deepEqual(modes(mesh + '---\n' + pa('default', 'foo', '{ mtls: { mode: UNSET } }'), 'foo', finance, [8080]), ['STRICT']);
  assert.deepEqual(modes(mesh + '---\n' + pa('default', 'foo', '{}'), 'foo', finance, [8080]), ['STRICT']);
});

test('Istio example: namespace PERMISSIVE, workload finance STRICT', () => {
  const yaml = pa('default', 'foo', '{ mtls: { mode: PERMISSIVE } }') + '---\n' + pa('finance', 'foo', '{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT } }');
  assert.deepEqual(modes(yaml, 'foo', finance, [8080, 9090]), ['STRICT', 'STRICT']);
  assert.deepEqual(modes(yaml, 'foo', { app: 'other' }, [8080]), ['PERMISSIVE']);
  // A workload policy selects only in its own namespace.
  assert.deepEqual(modes(yaml, 'bar', finance, [8080]), ['PERMISSIVE']);
});

test('Istio example: workload STRICT with port 8080 DISABLE', () => {
  const yaml = pa('finance', 'foo', '{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT }, portLevelMtls: { "8080": { mode: DISABLE } } }');
  assert.deepEqual(modes(yaml, 'foo', finance, [8080, 9090]), ['DISABLE', 'STRICT']);
});

test('Istio example: workload mtls UNSET inherits namespace/mesh for ports portLevelMtls does not list', () => {
  const workload = pa('finance', 'foo', '{ selector: { matchLabels: { app: finance } }, mtls: { mode: UNSET }, portLevelMtls: { "8080": { mode: DISABLE }, "7070": { mode: UNSET } } }');
  const ns = pa('default', 'foo', '{ mtls: { mode: STRICT } }');
  assert.deepEqual(modes(ns + '---\n' + workload, 'foo', finance, [8080, 9090, 7070]), ['DISABLE', 'STRICT', 'STRICT']);
  // No namespace policy: the mesh policy, then the PERMISSIVE default.
  const mesh = pa('default', 'istio-system', '{ mtls: { mode: STRICT } }');
  assert.deepEqual(modes(mesh + '---\n' + workload, 'foo', finance, [8080, 9090]), ['DISABLE', 'STRICT']);
  assert.deepEqual(modes(workload, 'foo', finance, [8080, 9090]), ['DISABLE', 'PERMISSIVE']);
  // No mtls field at all behaves as UNSET.
  const bare = pa('finance', 'foo', '{ selector: { matchLabels: { app: finance } }, portLevelMtls: { "8080": { mode: PERMISSIVE } } }');
  assert.deepEqual(modes(ns + '---\n' + bare, 'foo', finance, [8080, 9090]), ['PERMISSIVE', 'STRICT']);
});

test('competing policies at one level: the oldest wins, then the name, whatever the file order', () => {
  // File config carries no creationTimestamp (the loader keeps none), so equal ages fall back to the name.
  const b = pa('b', 'foo', '{ selector: { matchLabels: { app: finance } }, mtls: { mode: DISABLE } }');
  const a = pa('a', 'foo', '{ selector: { matchLabels: { app: finance } }, mtls: { mode: STRICT } }');
  assert.deepEqual(modes(b + '---\n' + a, 'foo', finance, [8080]), ['STRICT']);
  assert.deepEqual(modes(a + '---\n' + b, 'foo', finance, [8080]), ['STRICT']);
  const nsB = pa('b', 'foo', '{ mtls: { mode: DISABLE } }');
  const nsA = pa('a', 'foo', '{ mtls: { mode: STRICT } }');
  assert.deepEqual(modes(nsB + '---\n' + nsA, 'foo', { app: 'x' }, [8080]), ['STRICT']);
});

test('auto mTLS: endpoints whose PeerAuthentication DISABLEs mTLS get plaintext (EDS tlsMode disabled), others Istio mTLS', () => {
  const yaml = [
    'apiVersion: v1\nkind: Service\nmetadata: { name: finance, namespace: foo }\nspec: { selector: { app: finance }, ports: [{ name: http, port: 80, targetPort: 8080 }, { name: http-admin, port: 90, targetPort: 9090 }] }\n',
    'apiVersion: v1\nkind: Service\nmetadata: { name: ledger, namespace: bar }\nspec: { selector: { app: ledger }, ports: [{ name: http, port: 80, targetPort: 8080 }] }\n',
    pa('default', 'istio-system', '{ mtls: { mode: STRICT } }'),
    pa('finance', 'foo', '{ selector: { matchLabels: { app: finance } }, portLevelMtls: { "8080": { mode: DISABLE } } }'),
    pa('default', 'bar', '{ mtls: { mode: DISABLE } }'),
  ].join('---\n');
  const server = podSidecar('finance-0', 'foo', finance, 'finance', [{ port: 8080, name: 'http' }, { port: 9090, name: 'http-admin' }], '198.18.1.1');
  // Explicit mode: the endpoint port is the sidecar's inbound port, portLevelMtls still keys on the workload port.
  const explicitServer = explicitSidecar('finance-1', 'foo', finance, 'finance', [{ port: 8080, name: 'http' }, { port: 9090, name: 'http-admin' }], { ip: '127.0.0.1', base: 31000 });
  const ledger = podSidecar('ledger-0', 'bar', { app: 'ledger' }, 'ledger', [{ port: 8080, name: 'http' }], '198.18.1.2');
  const client = podSidecar('client-0', 'foo', { app: 'client' }, 'client', [], '198.18.1.3');
  const push = buildPush(parseYaml(yaml), [server, explicitServer, ledger, client]);
  const names = ['outbound|80||finance.foo.svc.cluster.local', 'outbound|90||finance.foo.svc.cluster.local', 'outbound|80||ledger.bar.svc.cluster.local'];
  const cla = GENERATORS[ENDPOINT_TYPE].generate(push, client, names);
  const tlsModes = (name: string) =>
    (cla.find((c) => c.cluster_name === name)!.endpoints as EnvoyJson[])
      .flatMap((l) => l.lb_endpoints as EnvoyJson[])
      .map((e) => `${((e.endpoint as EnvoyJson).address as { socket_address: { port_value: number } }).socket_address.port_value}:${((e.metadata as EnvoyJson).filter_metadata as Record<string, { tlsMode?: string }>)['envoy.transport_socket_match'].tlsMode}`)
      .sort();
  assert.deepEqual(tlsModes(names[0]), ['31001:disabled', '8080:disabled']);
  assert.deepEqual(tlsModes(names[1]), ['31002:istio', '9090:istio']);
  assert.deepEqual(tlsModes(names[2]), ['8080:disabled']);
  for (const c of cla) assert.deepEqual(checkMessage('ClusterLoadAssignment', c), []);
  // The client cluster keeps both transport sockets; the TLS one verifies only identities that serve mTLS.
  const clusters = GENERATORS[CLUSTER_TYPE].generate(push, client, undefined);
  const sans = (name: string) => {
    const m = (clusters.find((c) => c.name === name)!.transport_socket_matches as EnvoyJson[])[0];
    const ctx = (m.transport_socket as EnvoyJson).typed_config as EnvoyJson;
    return JSON.stringify((ctx.common_tls_context as EnvoyJson).combined_validation_context);
  };
  assert.ok(sans(names[1]).includes('spiffe://cluster.local/ns/foo/sa/finance'));
  assert.ok(!sans(names[0]).includes('spiffe://cluster.local/ns/foo/sa/finance'));
});

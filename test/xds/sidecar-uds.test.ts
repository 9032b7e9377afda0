// Unix domain sockets in the Sidecar resource, as istiod translates them (pilot/pkg/networking/core:
// BuildAddress with port 0 makes a pipe; a port-0 egress listener's RDS is named by its bind and
// takes every port of its hosts): ingress defaultEndpoint unix:///path is the inbound cluster's
// pipe endpoint; egress bind unix:///path (port 0) is an outbound listener on a pipe, HTTP or TCP.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { loadDocuments } from '../../src/api/index.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, parseYaml, podSidecar } from './fixtures.ts';

const CONFIG = `apiVersion: v1
kind: Service
metadata: { name: httpbin, namespace: foo }
spec: { selector: { app: httpbin }, ports: [{ name: http, port: 8000 }, { name: http-admin, port: 8001 }] }
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: foo }
spec: { selector: { app: db }, ports: [{ name: tcp, port: 5432 }] }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: foo }
spec:
  ingress:
  - port: { number: 9080, protocol: HTTP, name: http }
    defaultEndpoint: unix:///var/run/app.sock
  egress:
  - port: { number: 0, protocol: HTTP, name: http-uds }
    bind: unix:///var/run/egress.sock
    hosts: [./httpbin.foo.svc.cluster.local]
  - port: { number: 0, protocol: TCP, name: tcp-uds }
    bind: unix://@db
    hosts: [./db.foo.svc.cluster.local]
`;

const named = (list: EnvoyJson[], name: string) => list.find((x) => x.name === name) ?? assert.fail(`no ${name} in ${list.map((x) => x.name).join(', ')}`);
const filterOf = (l: EnvoyJson) => (((l.filter_chains as EnvoyJson[]).at(-1)!.filters as EnvoyJson[]).find((f) => /http_connection_manager|tcp_proxy/.test(f.name as string)) ?? assert.fail('no terminal filter')).typed_config as EnvoyJson;

for (const [mode, proxy] of [
  ['redirect', podSidecar('app-0', 'foo', { app: 'app' }, 'app', [{ port: 9080, name: 'http' }], '198.18.0.30')],
  ['explicit', explicitSidecar('app-1', 'foo', { app: 'app' }, 'app', [{ port: 9080, name: 'http' }])],
] as const) {
  test(`${mode}: ingress defaultEndpoint unix:// is the inbound cluster's pipe; egress bind unix:// listeners are pipes`, () => {
    const push = buildPush(parseYaml(CONFIG), [proxy]);
    const clusters = GENERATORS[CLUSTER_TYPE].generate(push, proxy, undefined);
    const inbound = named(clusters, 'inbound|9080||');
    assert.deepEqual(((inbound.load_assignment as EnvoyJson).endpoints as EnvoyJson[])[0], { lb_endpoints: [{ endpoint: { address: { pipe: { path: '/var/run/app.sock' } } } }] });
    assert.equal(inbound.upstream_bind_config, undefined, 'no source address on a Unix socket');
    // Port 0 listeners make their hosts visible, every port.
    for (const c of ['outbound|8000||httpbin.foo.svc.cluster.local', 'outbound|8001||httpbin.foo.svc.cluster.local', 'outbound|5432||db.foo.svc.cluster.local']) named(clusters, c);

    const listeners = GENERATORS[LISTENER_TYPE].generate(push, proxy, undefined);
    const http = named(listeners, 'unix:///var/run/egress.sock_0');
    assert.deepEqual([http.address, http.bind_to_port], [{ pipe: { path: '/var/run/egress.sock' } }, true]);
    assert.equal((filterOf(http).rds as EnvoyJson).route_config_name, 'unix:///var/run/egress.sock');
    const tcp = named(listeners, 'unix://@db_0');
    assert.deepEqual(tcp.address, { pipe: { path: '@db' } });
    assert.equal(filterOf(tcp).cluster, 'outbound|5432||db.foo.svc.cluster.local');

    const [rc] = GENERATORS[ROUTE_TYPE].generate(push, proxy, ['unix:///var/run/egress.sock']);
    const vhosts = rc!.virtual_hosts as EnvoyJson[];
    assert.deepEqual(vhosts.map((v) => v.name), ['httpbin.foo.svc.cluster.local:8000', 'httpbin.foo.svc.cluster.local:8001', 'allow_any']);
    assert.ok((vhosts[0]!.domains as string[]).includes('httpbin.foo.svc.cluster.local'));
    assert.ok((vhosts[1]!.domains as string[]).includes('httpbin:8001'));
    assert.equal(((vhosts[1]!.routes as EnvoyJson[])[0]!.route as EnvoyJson).cluster, 'outbound|8001||httpbin.foo.svc.cluster.local');
  });
}

test('Unix domain socket listeners: port 0 with a unix:// bind, no warning', () => {
  const check = (egress: string) => loadDocuments(`apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: { name: default, namespace: foo }\nspec:\n  ingress:\n  - port: { number: 9080, protocol: HTTP, name: http }\n    defaultEndpoint: unix:///var/run/app.sock\n  egress:\n  - ${egress}\n`, 'sidecar.yaml').diagnostics.map((d) => `${d.severity} ${d.path}`);
  assert.deepEqual(check('{ port: { number: 0, protocol: HTTP, name: h }, bind: "unix:///run/e.sock", hosts: ["./*"] }'), []);
  assert.deepEqual(check('{ port: { number: 0, protocol: HTTP, name: h }, bind: "unix://@e", captureMode: NONE, hosts: ["./*"] }'), []);
  assert.deepEqual(check('{ port: { number: 0, protocol: HTTP, name: h }, bind: 127.0.0.1, hosts: ["./*"] }'), ['Error spec.egress[0].port.number']);
  assert.deepEqual(check('{ port: { number: 9000, protocol: HTTP, name: h }, bind: "unix:///run/e.sock", hosts: ["./*"] }'), ['Error spec.egress[0].port.number']);
  assert.deepEqual(check('{ port: { number: 0, protocol: HTTP, name: h }, bind: "unix://relative", hosts: ["./*"] }'), ['Error spec.egress[0].bind']);
  assert.deepEqual(check('{ port: { number: 0, protocol: HTTP, name: h }, bind: "unix:///run/e.sock", captureMode: IPTABLES, hosts: ["./*"] }'), ['Error spec.egress[0].captureMode']);
});

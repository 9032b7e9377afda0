// AuthorizationPolicy end to end: YAML → the control plane's generators → the proxy runtime
// (apply(), as over ADS) → real HTTP/HTTPS/TCP requests with real SPIFFE client certificates.
// Each case lists requests and the outcome Istio documents (status, or TCP echo vs. closed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startSidecar, type Sidecar } from './sidecar-harness.ts';

const SLEEP = 'spiffe://cluster.local/ns/foo/sa/sleep';
const CLIENT = 'spiffe://cluster.local/ns/bar/sa/client';
const SNI = 'outbound_.9080_._.httpbin.foo.svc.cluster.local';

interface Req {
  id?: string;
  path?: string;
  method?: string;
  host?: string;
  headers?: Record<string, string>;
  /** HTTP status, or for TCP 'ping' (echoed) / 'closed'. */
  want: number | 'ping' | 'closed';
  tcp?: boolean;
}

function policy(name: string, spec: string, ns = 'foo'): string {
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${ns} }
spec:
${spec
  .split('\n')
  .map((l) => '  ' + l)
  .join('\n')}
`;
}

const CASES: { name: string; yaml: string; reqs: Req[] }[] = [
  { name: 'no policy allows everything', yaml: '', reqs: [{ want: 200 }, { id: CLIENT, want: 200 }, { tcp: true, want: 'ping' }] },
  { name: 'empty spec allows nothing', yaml: policy('allow-nothing', '{}'), reqs: [{ want: 403 }, { id: SLEEP, want: 403 }, { tcp: true, want: 'closed' }] },
  { name: 'rules: [{}] allows all', yaml: policy('allow-all', 'rules: [{}]'), reqs: [{ want: 200 }, { method: 'DELETE', want: 200 }, { tcp: true, id: CLIENT, want: 'ping' }] },
  { name: 'DENY with an empty rule denies all', yaml: policy('deny-all', 'action: DENY\nrules: [{}]'), reqs: [{ want: 403 }, { tcp: true, want: 'closed' }] },
  { name: 'DENY without rules denies nothing', yaml: policy('deny-none', 'action: DENY'), reqs: [{ want: 200 }, { tcp: true, want: 'ping' }] },
  {
    name: 'ALLOW policies present but none matching → deny; any matching → allow',
    yaml: policy('get', 'rules: [{ to: [{ operation: { methods: ["GET"] } }] }]') + policy('post-admin', 'rules: [{ to: [{ operation: { methods: ["POST"], paths: ["/admin"] } }] }]'),
    // On TCP the ALLOW rules use HTTP-only fields: they never match, so TCP is denied.
    reqs: [{ want: 200 }, { method: 'POST', path: '/admin', want: 200 }, { method: 'POST', want: 403 }, { method: 'PUT', path: '/admin', want: 403 }, { tcp: true, want: 'closed' }],
  },
  {
    name: 'DENY wins over ALLOW',
    yaml: policy('allow-sleep', `rules: [{ from: [{ source: { principals: ["cluster.local/ns/foo/sa/sleep"] } }] }]`) + policy('deny-admin', 'action: DENY\nrules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]'),
    // The DENY rule's only field is HTTP-only: on TCP it is dropped and the rule denies everything.
    reqs: [{ id: SLEEP, want: 200 }, { id: SLEEP, path: '/admin/users', want: 403 }, { id: CLIENT, want: 403 }, { want: 403 }, { tcp: true, id: SLEEP, want: 'closed' }],
  },
  {
    name: 'principals: exact, prefix, suffix, presence; TCP uses the peer identity too',
    yaml: policy('p', `rules: [{ from: [{ source: { principals: ["cluster.local/ns/foo/sa/sleep", "cluster.local/ns/baz/*", "*/sa/client"] } }] }]`),
    reqs: [
      { id: SLEEP, want: 200 },
      { id: 'spiffe://cluster.local/ns/baz/sa/any', want: 200 },
      { id: CLIENT, want: 200 },
      { id: 'spiffe://cluster.local/ns/foo/sa/other', want: 403 },
      { want: 403 },
      { tcp: true, id: SLEEP, want: 'ping' },
      { tcp: true, id: 'spiffe://cluster.local/ns/foo/sa/other', want: 'closed' },
      { tcp: true, want: 'closed' },
    ],
  },
  { name: 'principals "*" = any authenticated peer', yaml: policy('p', 'rules: [{ from: [{ source: { principals: ["*"] } }] }]'), reqs: [{ id: CLIENT, want: 200 }, { want: 403 }, { tcp: true, want: 'closed' }, { tcp: true, id: CLIENT, want: 'ping' }] },
  { name: 'notPrincipals', yaml: policy('p', 'action: DENY\nrules: [{ from: [{ source: { notPrincipals: ["cluster.local/ns/foo/sa/sleep"] } }] }]'), reqs: [{ id: SLEEP, want: 200 }, { id: CLIENT, want: 403 }, { want: 403 }] },
  { name: 'namespaces', yaml: policy('p', 'rules: [{ from: [{ source: { namespaces: ["bar"] } }] }]'), reqs: [{ id: CLIENT, want: 200 }, { id: SLEEP, want: 403 }, { want: 403 }, { tcp: true, id: CLIENT, want: 'ping' }, { tcp: true, id: SLEEP, want: 'closed' }] },
  { name: 'notNamespaces', yaml: policy('p', 'rules: [{ from: [{ source: { notNamespaces: ["bar"] } }] }]'), reqs: [{ id: CLIENT, want: 403 }, { id: SLEEP, want: 200 }, { want: 200 }] },
  { name: 'serviceAccounts', yaml: policy('p', 'rules: [{ from: [{ source: { serviceAccounts: ["sleep", "bar/client"] } }] }]'), reqs: [{ id: SLEEP, want: 200 }, { id: CLIENT, want: 200 }, { id: 'spiffe://cluster.local/ns/bar/sa/sleep', want: 403 }] },
  { name: 'ipBlocks', yaml: policy('p', 'rules: [{ from: [{ source: { ipBlocks: ["127.0.0.0/8"] } }] }]'), reqs: [{ want: 200 }, { tcp: true, want: 'ping' }] },
  { name: 'notIpBlocks', yaml: policy('p', 'rules: [{ from: [{ source: { notIpBlocks: ["127.0.0.1"] } }] }]'), reqs: [{ want: 403 }, { tcp: true, want: 'closed' }] },
  {
    name: 'remoteIpBlocks use x-forwarded-for',
    yaml: policy('p', 'rules: [{ from: [{ source: { remoteIpBlocks: ["10.1.0.0/16"] } }] }]'),
    reqs: [{ headers: { 'x-forwarded-for': '10.1.2.3' }, want: 200 }, { headers: { 'x-forwarded-for': '192.168.0.1' }, want: 403 }, { want: 403 }],
  },
  { name: 'notRemoteIpBlocks', yaml: policy('p', 'action: DENY\nrules: [{ from: [{ source: { notRemoteIpBlocks: ["10.1.0.0/16"] } }] }]'), reqs: [{ headers: { 'x-forwarded-for': '10.1.2.3' }, want: 200 }, { want: 403 }] },
  {
    name: 'hosts: exact (case-insensitive), suffix; notHosts',
    yaml: policy('p', 'rules: [{ to: [{ operation: { hosts: ["httpbin.foo", "*.example.com"], notHosts: ["bad.example.com"] } }] }]'),
    reqs: [{ host: 'HTTPBIN.foo', want: 200 }, { host: 'api.example.com', want: 200 }, { host: 'bad.example.com', want: 403 }, { host: 'other', want: 403 }],
  },
  {
    name: 'ports: workload ports, also on TCP',
    yaml: policy('p', 'rules: [{ to: [{ operation: { ports: ["9090"] } }] }]'),
    reqs: [{ want: 403 }, { tcp: true, want: 'ping' }],
  },
  { name: 'notPorts', yaml: policy('p', 'rules: [{ to: [{ operation: { notPorts: ["9090"] } }] }]'), reqs: [{ want: 200 }, { tcp: true, want: 'closed' }] },
  { name: 'methods and notMethods', yaml: policy('p', 'rules: [{ to: [{ operation: { methods: ["GET", "HEAD", "PUT"], notMethods: ["PUT"] } }] }]'), reqs: [{ want: 200 }, { method: 'PUT', want: 403 }, { method: 'POST', want: 403 }] },
  {
    name: 'paths: exact, prefix, suffix, presence; query ignored',
    yaml: policy('p', 'rules: [{ to: [{ operation: { paths: ["/exact", "/pre/*", "*.json"] } }] }]'),
    reqs: [{ path: '/exact?x=1', want: 200 }, { path: '/exact/more', want: 403 }, { path: '/pre/a/b', want: 200 }, { path: '/data/x.json', want: 200 }, { path: '/other', want: 403 }],
  },
  {
    name: 'path templates: {*} one segment, {**} the rest; notPaths with a template',
    yaml: policy('p', 'rules: [{ to: [{ operation: { paths: ["/api/{*}/info", "/files/{**}", "/v1/{*}/data/{**}"], notPaths: ["/files/secret/{**}"] } }] }]'),
    reqs: [
      { path: '/api/users/info', want: 200 },
      { path: '/api/users/info?verbose=1', want: 200 },
      { path: '/api/a/b/info', want: 403 },
      { path: '/api//info', want: 403 },
      { path: '/api/users/infos', want: 403 },
      { path: '/files/a/b/c', want: 200 },
      { path: '/files/', want: 200 },
      { path: '/files', want: 403 },
      { path: '/files/secret/key', want: 403 },
      { path: '/v1/a/data/x/y.json', want: 200 },
      { path: '/v1/a/b/data/x', want: 403 },
    ],
  },
  { name: 'paths "*" and notPaths', yaml: policy('p', 'rules: [{ to: [{ operation: { paths: ["*"], notPaths: ["/private*"] } }] }]'), reqs: [{ path: '/a', want: 200 }, { path: '/private/x', want: 403 }] },
  {
    name: 'when request.headers with values and notValues',
    yaml: policy('p', 'rules: [{ when: [{ key: "request.headers[X-User]", values: ["alice", "bob*"], notValues: ["bobby"] }] }]'),
    reqs: [{ headers: { 'x-user': 'alice' }, want: 200 }, { headers: { 'x-user': 'bob2' }, want: 200 }, { headers: { 'x-user': 'bobby' }, want: 403 }, { want: 403 }, { tcp: true, want: 'closed' }],
  },
  {
    name: 'when source.ip, source.namespace, source.principal (TCP too)',
    yaml: policy('p', 'rules: [{ when: [{ key: source.ip, values: ["127.0.0.1"] }, { key: source.namespace, values: ["foo"] }, { key: source.principal, values: ["cluster.local/ns/foo/sa/sleep"] }] }]'),
    reqs: [{ id: SLEEP, want: 200 }, { id: 'spiffe://cluster.local/ns/foo/sa/other', want: 403 }, { want: 403 }, { tcp: true, id: SLEEP, want: 'ping' }],
  },
  { name: 'when remote.ip', yaml: policy('p', 'rules: [{ when: [{ key: remote.ip, values: ["10.0.0.9"] }] }]'), reqs: [{ headers: { 'x-forwarded-for': '10.0.0.9' }, want: 200 }, { want: 403 }] },
  {
    name: 'when destination.ip and destination.port',
    yaml: policy('p', 'rules: [{ when: [{ key: destination.ip, values: ["127.0.0.0/8"] }, { key: destination.port, values: ["9080"] }] }]'),
    reqs: [{ want: 200 }, { tcp: true, want: 'closed' }],
  },
  { name: 'when connection.sni', yaml: policy('p', `rules: [{ when: [{ key: connection.sni, values: ["${SNI}"] }] }]`), reqs: [{ id: SLEEP, want: 200 }, { want: 403 }, { tcp: true, id: SLEEP, want: 'ping' }] },
  {
    name: 'several from/to entries are OR-ed, fields inside one AND-ed',
    yaml: policy('p', 'rules: [{ from: [{ source: { namespaces: ["bar"] } }, { source: { principals: ["cluster.local/ns/foo/sa/sleep"] } }], to: [{ operation: { methods: ["GET"], paths: ["/a"] } }, { operation: { methods: ["POST"] } }] }]'),
    reqs: [{ id: CLIENT, path: '/a', want: 200 }, { id: SLEEP, method: 'POST', want: 200 }, { id: SLEEP, path: '/b', want: 403 }, { path: '/a', want: 403 }],
  },
  {
    name: 'AUDIT never changes the decision',
    yaml: policy('audit', 'action: AUDIT\nrules: [{ to: [{ operation: { paths: ["/audited"] } }] }]'),
    reqs: [{ path: '/audited', want: 200 }, { want: 200 }, { tcp: true, want: 'ping' }],
  },
  {
    name: 'scopes: mesh (root namespace), namespace, workload selector; others do not apply',
    yaml:
      policy('mesh-deny', 'action: DENY\nrules: [{ to: [{ operation: { paths: ["/mesh-denied"] } }] }]', 'istio-system') +
      policy('ns-deny', 'action: DENY\nrules: [{ to: [{ operation: { paths: ["/ns-denied"] } }] }]') +
      policy('wl-deny', 'selector: { matchLabels: { app: httpbin } }\naction: DENY\nrules: [{ to: [{ operation: { paths: ["/wl-denied"] } }] }]') +
      policy('other-wl', 'selector: { matchLabels: { app: other } }\naction: DENY\nrules: [{ to: [{ operation: { paths: ["/other-denied"] } }] }]') +
      policy('other-ns', 'action: DENY\nrules: [{ to: [{ operation: { paths: ["/otherns-denied"] } }] }]', 'bar') +
      policy('root-selector', 'selector: { matchLabels: { app: httpbin } }\naction: DENY\nrules: [{ to: [{ operation: { paths: ["/root-sel-denied"] } }] }]', 'istio-system'),
    reqs: [
      { path: '/mesh-denied', want: 403 },
      { path: '/ns-denied', want: 403 },
      { path: '/wl-denied', want: 403 },
      { path: '/root-sel-denied', want: 403 },
      { path: '/other-denied', want: 200 },
      { path: '/otherns-denied', want: 200 },
    ],
  },
];

async function run(s: Sidecar, r: Req): Promise<number | string> {
  if (r.tcp) return s.tcp({ id: r.id });
  return (await s.http({ id: r.id, path: r.path, method: r.method, host: r.host, headers: r.headers })).status;
}

test('authorization matrix: policies × requests through generated config and the real proxy', async (t) => {
  const s = await startSidecar();
  t.after(() => s.close());
  for (const c of CASES) {
    await s.configure(c.yaml);
    for (const r of c.reqs) {
      const got = await run(s, r);
      assert.equal(got, r.want, `${c.name}: ${JSON.stringify({ ...r, want: undefined })}`);
    }
  }
});

test('a denial answers 403 "RBAC: access denied" with the matched policy in the response details, and counts', async (t) => {
  const s = await startSidecar();
  t.after(() => s.close());
  await s.configure(policy('deny-post', 'action: DENY\nrules: [{ to: [{ operation: { methods: ["POST"] } }] }]') + policy('allow-get', 'rules: [{ to: [{ operation: { methods: ["GET", "POST"] } }] }]') + policy('audit', 'action: AUDIT\nrules: [{ to: [{ operation: { methods: ["GET"] } }] }]'));
  const post = await s.http({ method: 'POST' });
  assert.equal(post.status, 403);
  assert.equal(post.body, 'RBAC: access denied');
  const put = await s.http({ method: 'PUT' });
  assert.equal(put.status, 403);
  assert.equal((await s.http({})).status, 200);
  const details = s.h.streams.map((i) => i.responseCodeDetails);
  assert.ok(details.includes('rbac_access_denied_matched_policy[ns[foo]-policy[deny-post]-rule[0]]'), details.join(','));
  assert.ok(details.includes('rbac_access_denied_matched_policy[none]'), details.join(','));
  const stat = (n: string) => s.h.rt.stats.all().find((x) => x.name === n)?.value;
  // Three RBAC filters (AUDIT→LOG, DENY, ALLOW) on one HCM share the counters, as in Envoy.
  assert.equal(stat('http.inbound_0.0.0.0_9080.rbac.denied'), 2);
  assert.equal(stat('http.inbound_0.0.0.0_9080.rbac.logged'), 1);
  const app = s.app.requests.map((r) => r.method);
  assert.deepEqual(app, ['GET']);
});

test('istio.io/dry-run policies are evaluated as shadow rules: counted, never enforced', async (t) => {
  const s = await startSidecar();
  t.after(() => s.close());
  await s.configure(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-post, namespace: foo, annotations: { istio.io/dry-run: "true" } }
spec: { action: DENY, rules: [{ to: [{ operation: { methods: ["POST"] } }] }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-get, namespace: foo, annotations: { istio.io/dry-run: "true" } }
spec: { rules: [{ to: [{ operation: { methods: ["GET"] } }] }] }
`);
  assert.equal((await s.http({ method: 'POST' })).status, 200);
  assert.equal((await s.http({ method: 'PUT' })).status, 200);
  assert.equal(await s.tcp({}), 'ping');
  const stat = (n: string) => s.h.rt.stats.all().find((x) => x.name === n)?.value;
  assert.equal(stat('http.inbound_0.0.0.0_9080.rbac.istio_dry_run_deny_.shadow_denied'), 1);
  assert.equal(stat('http.inbound_0.0.0.0_9080.rbac.istio_dry_run_allow_.shadow_denied'), 2);
  const md = s.h.streams.map((i) => i.filterState?.['envoy.filters.http.rbac'] as Record<string, string> | undefined);
  assert.equal(md[0]?.istio_dry_run_deny_shadow_effective_policy_id, 'ns[foo]-policy[deny-post]-rule[0]', 'Envoy prefixes the keys with shadow_rules_stat_prefix');
});

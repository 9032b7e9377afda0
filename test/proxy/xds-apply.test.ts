// ProxyRuntime.apply() as the xDS client drives it: ACK/NACK with field paths, the previous config
// kept on NACK, warnings for unsupported fields, EDS/RDS/LDS updates without dropping requests.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, addr, configure, httpListener, request, routeConfig, startRuntime, startTestRuntime, startUpstream } from './harness.ts';

const edsCluster = (name: string) => ({ name, type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } } });
const cla = (name: string, ports: number[]) => ({ cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: addr(p) } })) }] });

test('invalid updates are NACKed with every error and the previous config keeps serving', async (t) => {
  const a = await startUpstream('a');
  const h = await startTestRuntime(t, [a]);
  assert.equal(h.rt.state(), 'INITIALIZING');
  // Not configure(): its settled() would wait for the listener, warming until its routes arrive.
  assert.deepEqual([...h.apply(CLUSTER_TYPE, [edsCluster('a')]), ...h.apply(LISTENER_TYPE, [httpListener('l', 'r')])], []);
  assert.equal(h.rt.state(), 'INITIALIZING', 'EDS and RDS still missing');
  assert.deepEqual(h.apply(ENDPOINT_TYPE, [cla('a', [a.port])]), []);
  assert.equal(h.rt.state(), 'INITIALIZING', 'RDS still missing');
  await configure(h, { routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'a' } }])] });
  assert.equal(h.rt.state(), 'LIVE');
  const port = h.port('l');
  assert.equal((await request(port)).json().server, 'a');

  const errs = h.apply(ROUTE_TYPE, [
    {
      name: 'r',
      virtual_hosts: [
        { name: 'v1', domains: ['*'], routes: [{ match: { safe_regex: { regex: '(' } }, route: { cluster: 'a' } }, { match: { prefix: '/' }, route: { cluster: 'a', retry_policy: { retry_on: '5xx,bogus' } } }] },
        { name: 'v2', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 1 }], total_weight: 5 } } }] },
      ],
    },
  ]);
  assert.ok(errs.some((e) => e.includes('virtual_hosts[0].routes[0].match.safe_regex.regex') && e.includes('invalid regular expression')), errs.join('\n'));
  assert.ok(errs.some((e) => e.includes('retry_on') && e.includes('"bogus"')), errs.join('\n'));
  assert.ok(errs.some((e) => e.includes('domain "*" is also in virtual host "v1"')), errs.join('\n'));
  assert.ok(errs.some((e) => e.includes('total_weight')), errs.join('\n'));
  // A schema error (unknown field) is reported with its path.
  const schemaErrs = h.apply(CLUSTER_TYPE, [{ ...edsCluster('a'), conect_timeout: '1s' }]);
  assert.match(schemaErrs.join('\n'), /cluster "a": conect_timeout: unknown field/);
  const lErrs = h.apply(LISTENER_TYPE, [httpListener('l', 'r', { http_filters: [{ name: 'envoy.filters.http.nope', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: {} } }] })]);
  assert.match(lErrs.join('\n'), /unsupported HTTP filter/);
  assert.match(lErrs.join('\n'), /must end with envoy.filters.http.router/);
  // Still serving the old config.
  assert.equal((await request(port)).json().server, 'a');
});

test('once LIVE, a later cluster or route still warming does not take the server back to INITIALIZING (as Envoy)', async (t) => {
  const a = await startUpstream('a');
  const h = await startTestRuntime(t, [a]);
  await configure(h, { clusters: [edsCluster('a')], listeners: [httpListener('l', 'r')], endpoints: [cla('a', [a.port])], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'a' } }])] });
  assert.equal(h.rt.state(), 'LIVE');
  // A new EDS cluster without its ClusterLoadAssignment, and a listener naming a route not sent yet.
  assert.deepEqual([...h.apply(CLUSTER_TYPE, [edsCluster('a'), edsCluster('b')]), ...h.apply(LISTENER_TYPE, [httpListener('l', 'r'), httpListener('l2', 'r2')])], []);
  assert.equal(h.rt.state(), 'LIVE');
  assert.equal(h.rt.isReady(), true);
  assert.equal((await request(h.port('l'))).json().server, 'a', 'the warm listener serves');
});

test('unsupported fields are accepted with a warning that names them', async (t) => {
  const h = await startRuntime();
  t.after(() => h.close());
  const errs = h.apply(ROUTE_TYPE, [routeConfig('r', [{ match: { prefix: '/', tls_context: { presented: true } }, route: { cluster: 'a', internal_redirect_policy: { max_internal_redirects: 2 } } }])]);
  assert.deepEqual(errs, []);
  const w = h.rt.warnings.get(ROUTE_TYPE)!.join('\n');
  assert.match(w, /match\.tls_context.*not supported/);
  assert.match(w, /route\.internal_redirect_policy.*not supported/);
});

test('EDS, RDS and LDS updates apply to new requests without dropping one in flight', async (t) => {
  let release: (() => void) | undefined;
  const slow = await startUpstream('slow', (req, res) => {
    if (req.url !== '/slow') return false;
    release = () => res.end('slow done');
    return true;
  });
  const b = await startUpstream('b');
  const h = await startTestRuntime(t, [slow, b]);
  await configure(h, {
    clusters: [edsCluster('c')],
    endpoints: [cla('c', [slow.port])],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }])],
    listeners: [httpListener('l', 'r')],
  });
  const port = h.port('l');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const inflight = request(port, { path: '/slow' });
  while (!release) await new Promise((r) => setTimeout(r, 5));

  // EDS moves the cluster to b, RDS adds a route, LDS changes the HCM: all while /slow is pending.
  assert.deepEqual(h.apply(ENDPOINT_TYPE, [cla('c', [b.port])]), []);
  assert.deepEqual(h.apply(ROUTE_TYPE, [routeConfig('r', [{ match: { prefix: '/direct' }, direct_response: { status: 200, body: { inline_string: 'new route' } } }, { match: { prefix: '/' }, route: { cluster: 'c' } }])]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [httpListener('l', 'r', { server_name: 'rig-updated' })]), []);
  await h.rt.settled();
  assert.equal(h.port('l'), port, 'the listener keeps its socket');

  const r = await request(port, { agent });
  assert.equal(r.json().server, 'b');
  assert.equal(r.headers.server, 'rig-updated');
  assert.equal((await request(port, { path: '/direct', agent })).body, 'new route');
  release!();
  const done = await inflight;
  assert.equal(done.status, 200);
  assert.equal(done.body, 'slow done');

  // Removing the cluster: 503 NC; removing the listener: the port closes.
  assert.deepEqual(h.apply(CLUSTER_TYPE, []), []);
  assert.equal((await request(port, { path: '/x' })).status, 503);
  assert.deepEqual(h.apply(LISTENER_TYPE, []), []);
  await assert.rejects(request(port), /ECONNREFUSED/);
});

test('draining: in-flight requests finish, keep-alive responses say Connection: close, HTTP/2 gets GOAWAY, new connections are refused', async (t) => {
  let release: (() => void) | undefined;
  const up = await startUpstream('up', (req, res) => {
    if (req.url !== '/slow') return false;
    release = () => res.end('finished');
    return true;
  });
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [{ name: 'c', type: 'STATIC', connect_timeout: '1s', load_assignment: cla('c', [up.port]) }],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }])],
    listeners: [httpListener('l', 'r')],
  });
  const port = h.port('l');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  assert.equal((await request(port, { agent })).status, 200);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  await new Promise<void>((r, j) => {
    const s = session.request({ ':path': '/' }, { endStream: true });
    s.resume();
    s.on('end', r);
    s.on('error', j);
  });
  const goaway = new Promise<void>((r) => session.once('goaway', () => r()));
  const inflight = request(port, { path: '/slow' });
  while (!release) await new Promise((r) => setTimeout(r, 5));
  const drained = h.rt.drain(5000);
  assert.equal(h.rt.state(), 'DRAINING');
  await goaway;
  release!();
  const done = await inflight;
  assert.equal(done.body, 'finished');
  assert.equal(done.headers.connection, 'close');
  await drained;
  await assert.rejects(request(port), /ECONNREFUSED/);
});

test('an LDS update drains connections of a changed listener and keeps those of an unchanged one', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [{ name: 'c', type: 'STATIC', connect_timeout: '1s', load_assignment: cla('c', [up.port]) }],
    routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'c' } }])],
    listeners: [httpListener('l', 'r', { server_name: 'one' })],
  });
  const port = h.port('l');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const peer = () => h.streams.at(-1)!.downstreamRemoteAddress;

  assert.equal((await request(port, { agent })).headers.server, 'one');
  const first = peer();
  assert.deepEqual(h.apply(LISTENER_TYPE, [httpListener('l', 'r', { server_name: 'one' })]), []);
  assert.equal((await request(port, { agent })).headers.server, 'one');
  assert.equal(peer(), first, 'an identical LDS push keeps the keep-alive connection');

  assert.deepEqual(h.apply(LISTENER_TYPE, [httpListener('l', 'r', { server_name: 'two' })]), []);
  for (let i = 0; i < 200 && Object.keys(agent.freeSockets).length > 0; i++) await new Promise((r) => setTimeout(r, 5));
  const after = await request(port, { agent });
  assert.equal(after.headers.server, 'two', 'the request after a change runs with the new listener config');
  assert.notEqual(peer(), first, 'the idle connection of the old config was closed');
});

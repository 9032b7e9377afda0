// Route hash_policy → LoadBalancerContext.hash (Envoy's rules), and sticky sessions end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileHashPolicy, createLoadBalancer } from '../../../src/proxy/upstream/lb/index.ts';
import { xxHash64 } from '../../../src/proxy/upstream/lb/xxhash.ts';
import { host } from './hosts.ts';

const rotl1 = (h: bigint) => ((h << 1n) | (h >> 63n)) & ((1n << 64n) - 1n);

test('header: xxHash64 of the value; several values sorted and chained; absent → no hash', () => {
  const f = compileHashPolicy([{ header: { header_name: 'X-User' } }]);
  assert.equal(f({ headers: { 'x-user': 'alice' } }).hash, xxHash64('alice'));
  assert.equal(f({ headers: { 'x-user': ['b', 'a'] } }).hash, xxHash64('b', xxHash64('a')));
  assert.equal(f({ headers: {} }).hash, undefined);
  const authority = compileHashPolicy([{ header: { header_name: ':authority' } }]);
  assert.equal(authority({ headers: { host: 'reviews:9080' } }).hash, xxHash64('reviews:9080'));
});

test('header regex_rewrite is applied before hashing (RE2, \\1 groups)', () => {
  const f = compileHashPolicy([{ header: { header_name: 'x-session', regex_rewrite: { pattern: { regex: '^user-(\\d+)-.*$' }, substitution: 'u\\1' } } }]);
  assert.equal(f({ headers: { 'x-session': 'user-42-abc' } }).hash, xxHash64('u42'));
});

test('policies combine as rotl1(hash) ^ next; terminal stops once a hash exists', () => {
  const both = compileHashPolicy([{ header: { header_name: 'a' } }, { header: { header_name: 'b' } }]);
  assert.equal(both({ headers: { a: '1', b: '2' } }).hash, rotl1(xxHash64('1')) ^ xxHash64('2'));
  assert.equal(both({ headers: { b: '2' } }).hash, xxHash64('2'));
  const terminal = compileHashPolicy([{ header: { header_name: 'a' }, terminal: true }, { header: { header_name: 'b' } }]);
  assert.equal(terminal({ headers: { a: '1', b: '2' } }).hash, xxHash64('1'));
  assert.equal(terminal({ headers: { b: '2' } }).hash, xxHash64('2'));
});

test('source IP, query parameter and cookie', () => {
  const ip = compileHashPolicy([{ connection_properties: { source_ip: true } }]);
  assert.equal(ip({ headers: {}, remoteAddress: '::ffff:10.1.2.3' }).hash, xxHash64('10.1.2.3'));
  assert.equal(ip({ headers: {}, remoteAddress: 'fd00::1' }).hash, xxHash64('fd00::1'));
  const q = compileHashPolicy([{ query_parameter: { name: 'shard' } }]);
  assert.equal(q({ headers: {}, query: '?a=1&shard=7&shard=8' }).hash, xxHash64('7'));
  assert.equal(q({ headers: {}, query: new URLSearchParams('x=1') }).hash, undefined);
  const c = compileHashPolicy([{ cookie: { name: 'sid' } }]);
  assert.equal(c({ headers: { cookie: 'a=b; sid="abc"; z=1' } }).hash, xxHash64('abc'));
  assert.deepEqual(c({ headers: {} }), { hash: undefined });
});

test('cookie with ttl: generated when absent, returned for Set-Cookie, and sticky afterwards', () => {
  const f = compileHashPolicy([{ cookie: { name: 'sticky', ttl: '3600s', path: '/app', attributes: [{ name: 'SameSite', value: 'Lax' }] } }]);
  const first = f({ headers: {}, remoteAddress: '10.0.0.9', remotePort: 40000 });
  assert.ok(first.setCookie);
  assert.match(first.setCookie.value, /^[0-9a-f]{16}$/);
  assert.equal(first.setCookie.header, `sticky="${first.setCookie.value}"; Max-Age=3600; Path=/app; SameSite=Lax; HttpOnly`);
  const again = f({ headers: { cookie: `sticky="${first.setCookie.value}"` }, remoteAddress: '10.9.9.9', remotePort: 1 });
  assert.equal(again.setCookie, undefined);
  assert.equal(again.hash, first.hash);
  const lb = createLoadBalancer('RING_HASH', [1, 2, 3, 4, 5].map((i) => host(i)), {});
  assert.equal(lb.pick({ hash: again.hash }), lb.pick({ hash: first.hash }));
  const session = compileHashPolicy([{ cookie: { name: 's', ttl: '0s' } }])({ headers: {}, remoteAddress: '1.1.1.1' });
  assert.equal(session.setCookie?.header, `s="${session.setCookie?.value}"; HttpOnly`);
});

test('bad hash_policy entries are errors with field paths; unknown kinds are warnings', () => {
  assert.throws(() => compileHashPolicy([{ header: {} }]), /hash_policy\[0\]\.header\.header_name: required/);
  assert.throws(() => compileHashPolicy([{ cookie: { name: 'x', ttl: 'soon' } }]), /hash_policy\[0\]\.cookie\.ttl/);
  assert.throws(() => compileHashPolicy([{ header: { header_name: 'a', regex_rewrite: { pattern: { regex: '(' }, substitution: '' } } }]), /invalid RE2 regex/);
  const warnings: string[] = [];
  const f = compileHashPolicy([{ filter_state: { key: 'k' } }], (w) => warnings.push(w));
  assert.deepEqual(warnings, ['hash_policy[0].filter_state: not supported by Rigging, ignored']);
  assert.equal(f({ headers: {} }).hash, undefined);
});

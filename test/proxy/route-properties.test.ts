// Property tests (fast-check) for the compiled route table and header mutations against small
// reference models of Envoy's documented semantics.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compileRouteConfig, matchRoute } from '../../src/proxy/routing/route-config.ts';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { readHeaderOps } from '../../src/proxy/routing/header-ops.ts';
import { newStreamInfo } from '../../src/proxy/stream-info.ts';
import type { RequestHead } from '../../src/proxy/filters/filter.ts';

const seg = fc.stringMatching(/^[a-zA-Z0-9._~-]{0,6}$/);
const pathArb = fc.array(seg, { minLength: 0, maxLength: 4 }).map((s) => '/' + s.join('/'));
const queryArb = fc.option(fc.stringMatching(/^[a-z0-9=&]{0,8}$/), { nil: undefined });
const head = (path: string, authority = 'h', headers: Record<string, string> = {}): RequestHead => ({ method: 'GET', path, authority, scheme: 'http', headers });

function table(routes: unknown[], domains = ['*']) {
  const issues = new Issues();
  const t = compileRouteConfig({ name: 'r', virtual_hosts: [{ name: 'v', domains, routes }] }, '', issues);
  assert.deepEqual(issues.errors, []);
  return t;
}

test('prefix, exact, path_separated_prefix and case-insensitive matching agree with the reference model', () => {
  fc.assert(
    fc.property(pathArb, pathArb, queryArb, fc.boolean(), (p, pattern, q, caseSensitive) => {
      const full = q === undefined ? p : `${p}?${q}`;
      const norm = (s: string) => (caseSensitive ? s : s.toLowerCase());
      // path_separated_prefix must not end with "/" (so "/" alone is invalid, as in Envoy's proto).
      const sep = pattern.replace(/\/+$/, '') || '/x';
      const t = table([
        { name: 'exact', match: { path: pattern, case_sensitive: caseSensitive }, direct_response: { status: 200 } },
        { name: 'sep', match: { path_separated_prefix: sep, case_sensitive: caseSensitive }, direct_response: { status: 200 } },
        { name: 'prefix', match: { prefix: pattern, case_sensitive: caseSensitive }, direct_response: { status: 200 } },
      ]);
      const got = matchRoute(t.virtualHosts[0], head(full), false)?.name;
      const sp = sep;
      const sepMatch = norm(p).startsWith(norm(sp)) && (p.length === sp.length || p[sp.length] === '/');
      const want = norm(p) === norm(pattern) ? 'exact' : sepMatch ? 'sep' : norm(p).startsWith(norm(pattern)) ? 'prefix' : undefined;
      assert.equal(got, want, `path ${full} pattern ${pattern} sep ${sp} cs ${caseSensitive}`);
    }),
    { numRuns: 400 },
  );
});

test('virtual host selection: exact, then longest suffix wildcard, then longest prefix wildcard, then *', () => {
  const label = fc.stringMatching(/^[a-c]{1,3}$/);
  const host = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.'));
  const domain = fc.oneof(host, host.map((h) => `*.${h}`), host.map((h) => `${h}.*`), host.map((h) => `*${h}`));
  fc.assert(
    // Several hosts on one table, each twice: the lookup's caches (last authority, then every authority seen) answer as the first look did.
    fc.property(fc.uniqueArray(domain, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.array(host, { minLength: 1, maxLength: 6 }), (domains, withStar, hosts) => {
      const all = withStar ? [...domains, '*'] : domains;
      const issues = new Issues();
      const t = compileRouteConfig({ name: 'r', virtual_hosts: all.map((d, i) => ({ name: `v${i}:${d}`, domains: [d], routes: [] })) }, '', issues);
      assert.deepEqual(issues.errors, []);
      for (const h of hosts.flatMap((x) => [x, x])) {
        const exact = all.find((d) => d === h);
        const suffixes = all.filter((d) => d.startsWith('*') && d !== '*' && h.length > d.length - 1 && h.endsWith(d.slice(1))).sort((a, b) => b.length - a.length);
        const prefixes = all.filter((d) => d.endsWith('*') && d !== '*' && !d.startsWith('*') && h.length > d.length - 1 && h.startsWith(d.slice(0, -1))).sort((a, b) => b.length - a.length);
        const want = exact ?? suffixes[0] ?? prefixes[0] ?? (withStar ? '*' : undefined);
        const got = t.findVirtualHost(h)?.domains[0];
        assert.equal(got, want, `host ${h} domains ${all.join(' ')}`);
      }
    }),
    { numRuns: 400 },
  );
});

test('header matchers: exact / prefix / present / invert behave as documented for any value', () => {
  fc.assert(
    fc.property(fc.option(fc.stringMatching(/^[a-z]{0,5}$/), { nil: undefined }), fc.stringMatching(/^[a-z]{0,3}$/), fc.boolean(), (value, want, invert) => {
      const t = table([
        { name: 'exact', match: { prefix: '/', headers: [{ name: 'x-h', string_match: { exact: want }, invert_match: invert }] }, direct_response: { status: 200 } },
        { name: 'prefix', match: { prefix: '/', headers: [{ name: 'x-h', string_match: { prefix: want } }] }, direct_response: { status: 200 } },
        { name: 'present', match: { prefix: '/', headers: [{ name: 'x-h', present_match: true }] }, direct_response: { status: 200 } },
        { name: 'none', match: { prefix: '/' }, direct_response: { status: 200 } },
      ]);
      const got = matchRoute(t.virtualHosts[0], head('/', 'h', value === undefined ? {} : { 'x-h': value }), false)?.name;
      // Envoy: a missing header never matches a value matcher, even inverted.
      const exactHit = value !== undefined && (value === want) !== invert;
      const expected = exactHit ? 'exact' : value !== undefined && value.startsWith(want) ? 'prefix' : value !== undefined ? 'present' : 'none';
      assert.equal(got, expected);
    }),
    { numRuns: 300 },
  );
});

test('header ops: removals, then additions with each append action, on any starting headers', () => {
  const name = fc.constantFrom('x-a', 'x-b', 'x-c');
  const val = fc.stringMatching(/^[a-z0-9]{1,4}$/);
  const action = fc.constantFrom('APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS');
  fc.assert(
    fc.property(fc.dictionary(name, val), fc.array(fc.tuple(name, val, action), { maxLength: 5 }), fc.uniqueArray(name, { maxLength: 2 }), (start, adds, removes) => {
      const issues = new Issues();
      const ops = readHeaderOps(new Reader({ request_headers_to_add: adds.map(([k, v, a]) => ({ header: { key: k, value: v }, append_action: a })), request_headers_to_remove: removes }, '', issues), 'request');
      assert.deepEqual(issues.errors, []);
      const headers: Record<string, string | string[] | undefined> = { ...start };
      ops.apply(headers, newStreamInfo('outbound', 'HTTP/1.1'), undefined);
      const model: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(start)) if (!(removes as string[]).includes(k)) model[k] = [v];
      for (const [k, v, a] of adds) {
        const has = model[k] !== undefined;
        if (a === 'APPEND_IF_EXISTS_OR_ADD') model[k] = [...(model[k] ?? []), v];
        else if (a === 'ADD_IF_ABSENT' && !has) model[k] = [v];
        else if (a === 'OVERWRITE_IF_EXISTS_OR_ADD') model[k] = [v];
        else if (a === 'OVERWRITE_IF_EXISTS' && has) model[k] = [v];
      }
      const got: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(headers)) if (v !== undefined) got[k] = Array.isArray(v) ? v : [v];
      assert.deepEqual(got, model);
    }),
    { numRuns: 300 },
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileNameTable, NameTableError, validateNameTable, type NameTable } from './dns-name-table.ts';

const TABLE: NameTable = {
  table: {
    'reviews.default.svc.cluster.local': { ips: ['10.96.0.12'], registry: 'Kubernetes', shortname: 'reviews', namespace: 'default' },
    'ratings.prod.svc.cluster.local': { ips: ['10.96.1.7', 'fd00::7'], registry: 'Kubernetes', shortname: 'ratings', namespace: 'prod' },
    'api.example.com': { ips: ['240.240.0.1'], registry: 'External' },
    '*.wild.example.org': { ips: ['240.240.0.2'], registry: 'External' },
    'exact.wild.example.org': { ips: ['240.240.0.3'], registry: 'External' },
  },
};
const SEARCH = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

test('FQDNs, short names from the same namespace and name.namespace resolve to the VIPs', () => {
  const t = compileNameTable(TABLE, { namespace: 'default', searchDomains: SEARCH });
  assert.deepEqual(t.lookup('reviews.default.svc.cluster.local'), { v4: ['10.96.0.12'], v6: [] });
  assert.deepEqual(t.lookup('REVIEWS.default.svc.cluster.local.'), { v4: ['10.96.0.12'], v6: [] });
  assert.deepEqual(t.lookup('reviews')?.v4, ['10.96.0.12']);
  assert.deepEqual(t.lookup('reviews.default')?.v4, ['10.96.0.12']);
  assert.deepEqual(t.lookup('ratings.prod')?.v4, ['10.96.1.7']);
  assert.deepEqual(t.lookup('ratings.prod.svc')?.v6, ['fd00::7']);
  // A short name of another namespace does not resolve bare.
  assert.equal(t.lookup('ratings'), undefined);
  assert.equal(t.lookup('unknown.default'), undefined);
});

test("names the resolver expanded with the pod's search domains resolve", () => {
  const t = compileNameTable(TABLE, { namespace: 'default', searchDomains: SEARCH });
  assert.deepEqual(t.lookup('reviews.default.default.svc.cluster.local')?.v4, ['10.96.0.12']); // "reviews.default" + 1st domain
  assert.deepEqual(t.lookup('ratings.prod.svc.cluster.local')?.v4, ['10.96.1.7']);
  assert.deepEqual(t.lookup('api.example.com.svc.cluster.local')?.v4, ['240.240.0.1']);
  assert.equal(t.lookup('ratings.default.svc.cluster.local'), undefined);
  // Without the search domains, no stripping.
  assert.equal(compileNameTable(TABLE, { namespace: 'default' }).lookup('reviews.default.default.svc.cluster.local'), undefined);
});

test('ServiceEntry hosts and wildcards resolve; an exact host wins over a wildcard', () => {
  const t = compileNameTable(TABLE);
  assert.deepEqual(t.lookup('api.example.com')?.v4, ['240.240.0.1']);
  assert.deepEqual(t.lookup('a.b.wild.example.org')?.v4, ['240.240.0.2']);
  assert.deepEqual(t.lookup('exact.wild.example.org')?.v4, ['240.240.0.3']);
  assert.equal(t.lookup('wild.example.org'), undefined);
  assert.equal(t.lookup('reviews'), undefined, 'no namespace given: no bare short names');
});

test('a bad table is rejected with the host and field named', () => {
  const bad = (table: unknown, re: RegExp) => assert.throws(() => validateNameTable(table), (e: Error) => e instanceof NameTableError && re.test(e.message));
  bad(null, /expected an object/);
  bad({ table: { 'x.com': { ips: ['1.2.3'] } } }, /x\.com: "1\.2\.3" in ips is not an IP address/);
  bad({ table: { 'x.com': { ips: [], ttl: 5 } } }, /x\.com: unknown field\(s\) ttl/);
  bad({ table: { 'a..com': { ips: [] } } }, /"a\.\.com" is not a hostname/);
  bad({ table: { 'a.*.com': { ips: [] } } }, /wildcard/);
  bad({ table: { 'x.com': { ips: [], shortname: 3 } } }, /shortname must be a string/);
});

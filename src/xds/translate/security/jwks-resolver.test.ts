// The control plane's JWKS resolver against a real HTTP server: a jwksUri is fetched again while a
// RequestAuthentication names it, and no longer once none does.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Resource } from '../../../api/resource.ts';
import { until } from '../../../../test/helpers/wait.ts';
import { JwksResolver, jwksInUse } from './jwks-resolver.ts';

const requestAuthentication = (jwksUri: string) =>
  ({ kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'default' }, spec: { jwtRules: [{ issuer: 'https://issuer.test', jwksUri }] } }) as unknown as Resource;

test('a jwksUri is refreshed while a RequestAuthentication names it, and forgotten once none does', async (t) => {
  let hits = 0;
  const server = http.createServer((_q, s) => {
    hits++;
    s.end('{"keys":[]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  const resolver = new JwksResolver({ refreshIntervalMs: 100 });
  let resources = [requestAuthentication(uri)];
  t.after(resolver.trackUse(() => jwksInUse(resources)));
  assert.equal(resolver.get(uri, 1000).jwks, undefined, 'not fetched yet');
  await until('refreshed while in use', () => hits >= 3);
  assert.equal(resolver.get(uri, 1000).jwks, '{"keys":[]}');
  resources = [];
  await sleep(300);
  const before = hits;
  await sleep(500);
  assert.equal(hits, before, 'no fetch once no policy names the URI');
  // Named again: fetched at once, as a new URI.
  resources = [requestAuthentication(uri)];
  assert.equal(resolver.get(uri, 1000).jwks, undefined);
  await until('fetched again', () => hits > before);
  resources = [];
  await sleep(300); // the next tick forgets it and stops the timer
});

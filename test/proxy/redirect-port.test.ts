// The port of a redirect's Location through a live proxy, as Envoy's Http::Utility::newUri sets it:
// port_redirect replaces the request's port; host_redirect is taken whole (the request's port does
// not follow it); a scheme change drops the request's port only when it is the default one of the
// request's x-forwarded-proto (http://h:80 → https://h, http://h:8080 → https://h:8080).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configure, httpListener, request, routeConfig, startTestRuntime } from './harness.ts';

test("redirect Location ports follow Envoy's newUri", async (t) => {
  const h = await startTestRuntime(t);
  await configure(h, {
    listeners: [
      httpListener(
        'l',
        routeConfig('r', [
          { match: { prefix: '/port' }, redirect: { port_redirect: 9443 } },
          { match: { prefix: '/host-port' }, redirect: { host_redirect: 'other.test', port_redirect: 8083 } },
          { match: { prefix: '/host' }, redirect: { host_redirect: 'other.test' } },
          { match: { prefix: '/https' }, redirect: { https_redirect: true } },
          { match: { prefix: '/path' }, redirect: { path_redirect: '/new' } },
        ]),
      ),
    ],
  });
  const port = h.port('l');
  const location = async (path: string, host: string, headers: Record<string, string> = {}) => {
    const r = await request(port, { path, headers: { host, ...headers } });
    assert.equal(r.status, 301, `${host}${path}`);
    return r.headers.location;
  };
  assert.equal(await location('/port', 'shop.test:8080'), 'http://shop.test:9443/port');
  assert.equal(await location('/port', 'shop.test'), 'http://shop.test:9443/port');
  assert.equal(await location('/port', '[::1]:8080'), 'http://[::1]:9443/port');
  assert.equal(await location('/host-port', 'shop.test:8080'), 'http://other.test:8083/host-port');
  assert.equal(await location('/host', 'shop.test:8080'), 'http://other.test/host', "host_redirect drops the request's port");
  assert.equal(await location('/https', 'shop.test:80'), 'https://shop.test/https', "http's default port goes with the scheme change");
  assert.equal(await location('/https', 'shop.test:8080'), 'https://shop.test:8080/https', 'another port stays');
  assert.equal(await location('/path', 'shop.test:80'), 'http://shop.test:80/new', 'no scheme change: the port stays, even a default one');
  assert.equal(await location('/path', 'shop.test:8080'), 'http://shop.test:8080/new');
});

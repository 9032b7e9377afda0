// An Istio EnvoyFilter inserting envoy.filters.http.lua, through the real control plane and two real
// `rig proxy` processes. The EnvoyFilter is the one of Istio's EnvoyFilter reference (reviews-lua):
// the Lua filter INSERT_BEFORE the router of the SIDECAR_INBOUND HTTP connection managers (written
// in camelCase, defaultSourceCode.inlineString), and a CLUSTER ADD of lua_cluster that its
// httpCall() goes to. Adapted: productpage on 9080 instead of reviews on 8080, lua_cluster on a
// local upstream, and the script uses the call's answer (403 unless the ACL service says 200, its
// verdict as a request header otherwise) so that the test sees the filter work.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { request, startUpstream } from '../proxy/harness.ts';

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: productpage, namespace: default }
spec: { selector: { app: productpage }, ports: [{ name: http, port: 9080 }] }
`;

const ENVOY_FILTER = (aclPort: number) => `---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: productpage-lua
  namespace: default
spec:
  workloadSelector:
    labels:
      app: productpage
  configPatches:
    # The first patch adds the lua filter to the listener/http connection manager
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
        portNumber: 9080
        filterChain:
          filter:
            name: "envoy.filters.network.http_connection_manager"
            subFilter:
              name: "envoy.filters.http.router"
    patch:
      operation: INSERT_BEFORE
      value: # lua filter specification
       name: envoy.filters.http.lua
       typed_config:
          "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
          defaultSourceCode:
            inlineString: |
              function envoy_on_request(request_handle)
                -- Make an HTTP call to an upstream host with the following headers, body, and timeout.
                local headers, body = request_handle:httpCall(
                 "lua_cluster",
                 {
                  [":method"] = "POST",
                  [":path"] = "/acl",
                  [":authority"] = "internal.org.net",
                  ["x-user"] = request_handle:headers():get("x-user") or ""
                 },
                "authorize call",
                5000)
                if headers[":status"] ~= "200" then
                  request_handle:respond({[":status"] = "403"}, body)
                  return
                end
                request_handle:headers():add("x-acl", body)
              end
              function envoy_on_response(response_handle)
                response_handle:headers():add("x-lua-inbound", "productpage")
              end
  # The second patch adds the cluster that is referenced by the lua code
  # cds match is omitted as a new cluster is being added
  - applyTo: CLUSTER
    match:
      context: SIDECAR_OUTBOUND
    patch:
      operation: ADD
      value: # cluster specification
        name: "lua_cluster"
        type: STRICT_DNS
        connect_timeout: 0.5s
        lb_policy: ROUND_ROBIN
        load_assignment:
          cluster_name: lua_cluster
          endpoints:
          - lb_endpoints:
            - endpoint:
                address:
                  socket_address:
                    protocol: TCP
                    address: "127.0.0.1"
                    port_value: ${aclPort}
`;

test('an EnvoyFilter inserting a Lua filter before the inbound router: its httpCall to an added cluster decides each request', async (t) => {
  const acl = await startUpstream('acl', (req, res, body) => {
    const allowed = req.headers['x-user'] === 'alice' && body === 'authorize call' && req.url === '/acl';
    res.writeHead(allowed ? 200 : 401);
    res.end(allowed ? 'allowed alice' : 'no access');
    return true;
  });
  const app = await startUpstream('productpage');
  t.after(() => Promise.all([acl.close(), app.close()]));
  const mesh = await startMeshControlPlane(t, { dirPrefix: 'rig-envoyfilter-lua-', config: SERVICE + ENVOY_FILTER(acl.port), controlPlane: { debounceMs: 10 } });
  const outbound = await freePort();
  await startSidecar(t, mesh, { namespace: 'default', name: 'sleep', args: ['--outbound-port', String(outbound)] });
  await startSidecar(t, mesh, { namespace: 'default', name: 'productpage', args: ['--workload-port', '9080/http/HTTP', '--inbound-port', `9080=${await freePort()}`, '--app-port', `9080=${app.port}`, '--outbound-port', String(await freePort())] });
  const viaSleep = (user: string) => request(outbound, { path: 'http://productpage.default.svc.cluster.local:9080/productpage', headers: { 'x-user': user } });

  const denied = await waitFor('the Lua filter in productpage inbound answering', async () => {
    const r = await viaSleep('mallory').catch(() => undefined);
    return r && r.status === 403 ? r : undefined;
  });
  assert.equal(denied.body, 'no access');
  assert.equal(app.requests.length, 0, 'a denied request never reached productpage');
  const ok = await viaSleep('alice');
  assert.equal(ok.status, 200);
  assert.equal(ok.json().headers['x-acl'], 'allowed alice');
  assert.equal(ok.headers['x-lua-inbound'], 'productpage');
  assert.equal(app.requests.length, 1);
});

// istioctl's debugging commands on a running `rig demo`: `rig proxy-config log` (a sidecar's log
// levels, read and set through its admin /logging), `rig proxy-config bootstrap` (its bootstrap from
// its admin /config_dump) and `rig x describe pod` (the configuration that applies to a replica, from
// the control plane's debug endpoints), each checked on what must change when the config changes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { ingressGatewayPort, startMesh, type Mesh } from '../local/mesh-harness.ts';
import { waitFor } from '../helpers/wait.ts';

const STRICT = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ratings-port, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  portLevelMtls: { "9080": { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ratings-viewer, namespace: default }
spec:
  selector: { matchLabels: { app: ratings } }
  rules: [{ from: [{ source: { principals: [cluster.local/ns/default/sa/bookinfo-reviews] } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: default }
spec:
  host: ratings
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST }, tls: { mode: ISTIO_MUTUAL } }
  subsets: [{ name: v1, labels: { version: v1 } }]
`;

describe('proxy-config log / bootstrap and x describe pod on a running rig demo', () => {
  let mesh: Mesh;
  let gatewayPort: number;
  let dir: string;

  before(async () => {
    mesh = await startMesh('demo', ['--no-traffic']);
    gatewayPort = await ingressGatewayPort(mesh, 8080);
    dir = fs.mkdtempSync(path.join(mesh.stateDir, 'config-'));
  });
  after(async () => {
    await mesh?.stop();
  });

  const rig = async (...args: string[]) => {
    const r = await mesh.rig(args);
    assert.equal(r.code, 0, `rig ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const apply = async (file: string) => rig('apply', '-f', file.includes('\n') ? write(file) : path.join(REPO_ROOT, file));
  const write = (text: string) => {
    const f = path.join(dir, `${fs.readdirSync(dir).length}.yaml`);
    fs.writeFileSync(f, text);
    return f;
  };
  /** `rig x describe pod` until its output has `line` (the control plane pushes after a debounce). */
  const describeUntil = (pod: string, line: string) =>
    waitFor(
      () => `describe ${pod} to show ${JSON.stringify(line)}`,
      async () => {
        const out = await rig('x', 'describe', 'pod', pod);
        return out.includes(line) ? out : undefined;
      },
      30_000,
    );

  it('proxy-config log: the loggers and their levels; --level sets all or some, the next call shows them; -r resets', async () => {
    const first = await rig('proxy-config', 'log', 'reviews-v1-0');
    assert.match(first, /^reviews-v1-0:\nactive loggers:\n/);
    assert.match(first, /^ {2}xds-client: info$/m);
    assert.match(first, /^ {2}proxy: info$/m);

    await rig('pc', 'log', 'reviews-v1-0', '--level', 'xds-client:debug,identity:error');
    const some = await rig('pc', 'log', 'reviews-v1-0');
    assert.match(some, /^ {2}xds-client: debug$/m);
    assert.match(some, /^ {2}identity: error$/m);
    assert.match(some, /^ {2}proxy: info$/m);
    // Another sidecar keeps its own levels.
    assert.match(await rig('pc', 'log', 'ratings-v1-0'), /^ {2}xds-client: info$/m);

    const all = await rig('pc', 'log', 'reviews-v1-0', '--level', 'warning');
    for (const line of all.split('\n').filter((l) => l.startsWith('  '))) assert.match(line, /: warning$/, all);

    const reset = await rig('pc', 'log', 'reviews-v1-0', '-r');
    for (const line of reset.split('\n').filter((l) => l.startsWith('  '))) assert.match(line, /: info$/, reset);

    const unknown = await mesh.rig(['pc', 'log', 'reviews-v1-0', '--level', 'no-such-logger:debug']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown logger "no-such-logger" \(one of .*xds-client/);
    const badLevel = await mesh.rig(['pc', 'log', 'reviews-v1-0', '--level', 'loud']);
    assert.notEqual(badLevel.code, 0);
    assert.match(badLevel.stderr, /unrecognized logging level "loud"/);
  });

  it('proxy-config bootstrap: the BootstrapConfigDump as json or yaml; short: node id, versions, metadata', async () => {
    const json = JSON.parse(await rig('pc', 'bootstrap', 'reviews-v2-0')) as { '@type': string; bootstrap: { node: { id: string; metadata: { LABELS: Record<string, string> } } } };
    assert.equal(json['@type'], 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump');
    assert.match(json.bootstrap.node.id, /^sidecar~[^~]+~reviews-v2-0\.default~default\.svc\.cluster\.local$/);
    assert.deepEqual(json.bootstrap.node.metadata.LABELS, { app: 'reviews', version: 'v2' });
    assert.match(await rig('pc', 'bootstrap', 'reviews-v2-0', '-o', 'yaml'), /^"@type": type\.googleapis\.com\/envoy\.admin\.v3\.BootstrapConfigDump\n/);

    const short = await rig('pc', 'bootstrap', 'istio-ingressgateway', '-o', 'short');
    assert.match(short, /^Node ID: +router~[^~]+~istio-ingressgateway\.istio-system~istio-system\.svc\.cluster\.local$/m);
    assert.match(short, /^Rig Version: +\d+\.\d+\.\d+/m);
    assert.match(short, /^Node Metadata:\n(?: {3}.+\n)*? {3}LABELS: istio=ingressgateway,app=istio-ingressgateway\n/m);
  });

  it('x describe pod: Services, DestinationRule subsets, the ingress gateway exposing it; a VirtualService applied shows its route', async () => {
    const before = await rig('x', 'describe', 'pod', 'reviews-v1-0');
    assert.equal(
      before,
      [
        'Pod: reviews-v1-0',
        '   Pod Revision: default',
        '   Pod Ports: 9080 (reviews-v1)',
        '--------------------',
        'Service: reviews',
        '   Port: http 9080/HTTP targets pod port 9080',
        'DestinationRule: reviews for "reviews"',
        '   Matching subsets: v1',
        '      (Non-matching subsets v2,v3)',
        '   No Traffic Policy',
        '--------------------',
        'Effective PeerAuthentication:',
        '   Workload mTLS mode: PERMISSIVE',
        '',
      ].join('\n'),
    );
    const productpage = await rig('describe', 'pod', 'productpage-v1-0.default');
    assert.ok(productpage.includes(`--------------------\nExposed on Ingress Gateway http://127.0.0.1:${gatewayPort}\nVirtualService: bookinfo\n   Route to host "productpage" with weight 100%\n   Match: /productpage, Match: /static*, Match: /login, Match: /logout, Match: /api/v1/products*\n`), productpage);

    await apply('examples/bookinfo/networking/virtual-service-all-v1.yaml');
    const v1 = await describeUntil('reviews-v1-0', 'VirtualService: reviews\n');
    assert.ok(v1.includes('VirtualService: reviews\n   Route to host "reviews" subset "v1" with weight 100%\n'), v1);
    const v2 = await describeUntil('reviews-v2-0', 'VirtualService: reviews\n');
    assert.ok(v2.includes('VirtualService: reviews\n   WARNING: No destinations match pod subsets (checked 1 HTTP routes)\n      Route to non-matching subset v1 for (everything)\n'), v2);

    await apply('examples/bookinfo/networking/virtual-service-reviews-80-20.yaml');
    const split = await describeUntil('reviews-v2-0', 'with weight 20%');
    assert.ok(split.includes('VirtualService: reviews\n   Route to host "reviews" subset "v2" with weight 20%\n--------------------\n'), split);
  });

  it('x describe pod: the effective mTLS mode (mesh, workload ports), the policies applied, the DestinationRule traffic policy, a fault', async () => {
    await apply(STRICT);
    await apply('examples/bookinfo/networking/virtual-service-ratings-test-abort.yaml');
    const out = await describeUntil('ratings-v1-0', 'Fault injection');
    assert.ok(out.includes('DestinationRule: ratings for "ratings"\n   Matching subsets: v1\n   Traffic Policy TLS Mode: ISTIO_MUTUAL\n   Policies: load balancer (LEAST_REQUEST)\n'), out);
    assert.match(out, /^VirtualService: ratings\n {3}Route to host "ratings" subset "v1" with weight 100%\n {3}Fault injection abort:\{.*httpStatus:500.*\}, Match: {2}when headers are end-user=jason\n/m);
    assert.ok(out.includes('Effective PeerAuthentication:\n   Workload mTLS mode: STRICT\n   Port Level mTLS mode:\n      9080: PERMISSIVE\nApplied PeerAuthentication:\n   default.istio-system, ratings-port.default\nApplied AuthorizationPolicy:\n   ratings-viewer.default\n'), out);
    // The mesh-wide mode reaches every workload; only the selected one has the policies.
    const details = await rig('x', 'describe', 'pod', 'details-v1-0');
    assert.ok(details.includes('Effective PeerAuthentication:\n   Workload mTLS mode: STRICT\nApplied PeerAuthentication:\n   default.istio-system\n'), details);
    assert.ok(!details.includes('AuthorizationPolicy'), details);
  });

  it('x describe pod: an unknown pod is an error naming the connected ones', async () => {
    const r = await mesh.rig(['x', 'describe', 'pod', 'no-such-pod']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pods "no-such-pod" not found among the proxies connected to the control plane \(.*reviews-v1-0\.default/);
  });
});

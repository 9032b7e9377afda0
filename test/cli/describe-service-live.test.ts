// `rig x describe service` on a running `rig demo`, as `istioctl x describe svc`: the Service's
// ports, the DestinationRule and VirtualService its pods' proxy is given (subsets matched against
// all its pods), its pods and the workloads behind it without a sidecar, the mTLS mode in effect
// for them and the ingress gateway exposing it, each checked on what must change when the
// configuration changes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ingressGatewayPort, startMesh, type Mesh } from '../local/mesh-harness.ts';
import { waitFor } from '../helpers/wait.ts';

const REVIEWS_ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    fault: { delay: { percentage: { value: 100 }, fixedDelay: 1s } }
    route: [{ destination: { host: reviews, subset: v2 } }]
    mirror: { host: reviews, subset: v3 }
    mirrorPercentage: { value: 50 }
  - route: [{ destination: { host: reviews, subset: v1 }, weight: 80 }, { destination: { host: reviews, subset: v3 }, weight: 20 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL }, outlierDetection: { consecutive5xxErrors: 5 } }
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }, { name: v3, labels: { version: v3 } }]
`;

// A VM without a sidecar behind reviews, and one pod of reviews held to STRICT mTLS.
const LEGACY_AND_STRICT = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-legacy, namespace: default }
spec: { address: 127.0.0.9, labels: { app: reviews, version: legacy }, ports: { http: 9080 } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: reviews-v2-strict, namespace: default }
spec:
  selector: { matchLabels: { app: reviews, version: v2 } }
  mtls: { mode: STRICT }
`;

// Services with no pods at all, and with workloads but none with a sidecar.
const PODLESS = `apiVersion: v1
kind: Service
metadata: { name: nobody, namespace: default }
spec: { selector: { app: nobody }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: legacy, namespace: default }
spec: { selector: { app: legacy }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: legacy-vm, namespace: default }
spec: { address: 127.0.0.10, labels: { app: legacy }, ports: { http: 9080 } }
`;

describe('x describe service on a running rig demo', () => {
  let mesh: Mesh;
  let gatewayPort: number;
  let dir: string;
  let meshConfigDir: string;

  before(async () => {
    // Istio's root namespace is not istio-system here: describe must take the control plane's.
    meshConfigDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-describe-mesh-'));
    fs.writeFileSync(path.join(meshConfigDir, 'mesh.yaml'), 'rootNamespace: mesh-root\n');
    mesh = await startMesh('demo', ['--no-traffic', '--mesh-config', path.join(meshConfigDir, 'mesh.yaml')]);
    gatewayPort = await ingressGatewayPort(mesh, 8080);
    dir = fs.mkdtempSync(path.join(mesh.stateDir, 'config-'));
  });
  after(async () => {
    await mesh?.stop();
    fs.rmSync(meshConfigDir, { recursive: true, force: true });
  });

  const rig = async (...args: string[]) => {
    const r = await mesh.rig(args);
    assert.equal(r.code, 0, `rig ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const apply = async (text: string) => {
    const f = path.join(dir, `${fs.readdirSync(dir).length}.yaml`);
    fs.writeFileSync(f, text);
    await rig('apply', '-f', f);
  };
  /** `rig x describe svc` until its output has `text` (the control plane pushes after a debounce). */
  const describeUntil = (svc: string, text: string) =>
    waitFor(
      () => `describe svc ${svc} to show ${JSON.stringify(text)}`,
      async () => {
        const out = await rig('x', 'describe', 'svc', svc);
        return out.includes(text) ? out : undefined;
      },
      30_000,
    );

  it('the ports, the DestinationRule with the subsets of all its pods, the pods and their mTLS mode', async () => {
    assert.equal(
      await rig('x', 'describe', 'service', 'reviews'),
      [
        'Service: reviews',
        '   Port: http 9080/HTTP targets pod port 9080',
        'DestinationRule: reviews for "reviews"',
        '   Matching subsets: v1,v2,v3',
        '   No Traffic Policy',
        '--------------------',
        'Pods: reviews-v1-0, reviews-v2-0, reviews-v3-0',
        'Effective PeerAuthentication:',
        '   Workload mTLS mode: PERMISSIVE',
        '',
      ].join('\n'),
    );
  });

  it('the ingress gateway exposing it, with the VirtualService bound there', async () => {
    const out = await rig('describe', 'svc', 'productpage.default');
    assert.ok(out.endsWith(`--------------------\nExposed on Ingress Gateway http://127.0.0.1:${gatewayPort}\nVirtualService: bookinfo\n   Route to host "productpage" with weight 100%\n   Match: /productpage, Match: /static*, Match: /login, Match: /logout, Match: /api/v1/products*\n`), out);
  });

  it('a VirtualService and DestinationRule applied: routes with weights, matches, a fault and a mirror; the traffic policy', async () => {
    await apply(REVIEWS_ROUTES);
    const out = await describeUntil('reviews', 'Mirror to host');
    assert.ok(
      out.startsWith(
        [
          'Service: reviews',
          '   Port: http 9080/HTTP targets pod port 9080',
          'DestinationRule: reviews for "reviews"',
          '   Matching subsets: v1,v2,v3',
          '   Traffic Policy TLS Mode: ISTIO_MUTUAL',
          '   Policies: outlier detection',
          'VirtualService: reviews',
          '   Route to host "reviews" subset "v2" with weight 100%',
          '   Mirror to host "reviews" subset "v3" (50% of requests)',
          '   Fault injection delay:{percentage:{value:100} fixedDelay:"1s"}, Match:  when headers are end-user=jason',
          '   Route to host "reviews" subset "v1" with weight 80%',
          '   Route to host "reviews" subset "v3" with weight 20%',
          '--------------------',
          '',
        ].join('\n'),
      ),
      out,
    );
  });

  it('a workload without a sidecar behind it is named; pods whose mTLS modes differ are grouped', async () => {
    await apply(LEGACY_AND_STRICT);
    const out = await describeUntil('reviews', 'STRICT');
    assert.ok(
      out.includes(
        [
          'Pods: reviews-v1-0, reviews-v2-0, reviews-v3-0',
          'WARNING: reviews-legacy (127.0.0.9) is not part of mesh; no Istio sidecar',
          'Effective PeerAuthentication (reviews-v1-0, reviews-v3-0):',
          '   Workload mTLS mode: PERMISSIVE',
          'Effective PeerAuthentication (reviews-v2-0):',
          '   Workload mTLS mode: STRICT',
          '',
        ].join('\n'),
      ),
      out,
    );
    // The legacy VM's labels match no subset; the pods' still match all three.
    assert.ok(out.includes('   Matching subsets: v1,v2,v3\n'), out);
  });

  it('a Service with no pods, and one whose workloads have no sidecar, say so as istioctl does', async () => {
    await apply(PODLESS);
    assert.equal(await describeUntil('nobody', 'no pods'), 'Service "nobody" has no pods.\n');
    const legacy = await describeUntil('legacy', 'no Istio pods');
    assert.match(legacy, /^Service "legacy" has no Istio pods\. {2}\(1 pods in service\)\.\n/);
  });

  it('a pod that is not ready is named and left out, as istioctl does; once ready it is described', async () => {
    const ready = path.join(dir, 'flaky-ready');
    await apply(`apiVersion: local.rigging.dev/v1alpha1
kind: Workload
metadata: { name: flaky, namespace: default, labels: { app: flaky, version: v1 } }
spec:
  command: [${JSON.stringify(process.execPath)}, -e, "setInterval(() => {}, 1 << 30)"]
  ports: [{ name: http, port: 9080 }]
  readinessProbe: { exec: { command: [test, -f, ${JSON.stringify(ready)}] } }
---
apiVersion: v1
kind: Service
metadata: { name: flaky, namespace: default }
spec: { selector: { app: flaky }, ports: [{ name: http, port: 9080 }] }
`);
    const notReady = await describeUntil('flaky', 'NOT READY');
    assert.equal(notReady, `WARNING: Pod flaky-0 NOT READY (command "test -f ${ready}" exited with status 1)\nService "flaky" has no ready Istio pods.  (1 pods in service).\n`);
    assert.match(await rig('x', 'describe', 'pod', 'flaky-0'), /^ {3}Pod Ports: 9080 \(flaky\)\nWARNING: Pod flaky-0 NOT READY \(command/m);
    fs.writeFileSync(ready, '');
    const described = await describeUntil('flaky', 'Pods: flaky-0');
    assert.ok(described.startsWith('Service: flaky\n   Port: http 9080/HTTP targets pod port 9080\n--------------------\nPods: flaky-0\n'), described);
  });

  it("the mesh-wide mTLS mode is the PeerAuthentication of the control plane's root namespace (-i overrides)", async () => {
    await apply(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: mesh-root }
spec: { mtls: { mode: STRICT } }
`);
    const out = await describeUntil('details', 'STRICT');
    assert.ok(out.endsWith('Pods: details-v1-0\nEffective PeerAuthentication:\n   Workload mTLS mode: STRICT\n'), out);
    assert.match(await rig('x', 'describe', 'pod', 'details-v1-0'), /^Applied PeerAuthentication:\n {3}default\.mesh-root$/m);
    assert.ok((await rig('x', 'describe', 'svc', 'details', '-i', 'istio-system')).endsWith('   Workload mTLS mode: PERMISSIVE\n'));
  });

  it('an unknown Service is an error naming the Services of its namespace', async () => {
    const r = await mesh.rig(['x', 'describe', 'svc', 'no-such-svc']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /services "no-such-svc" not found in namespace default \(its Services: details, .*productpage, ratings, reviews/);
    const other = await mesh.rig(['x', 'describe', 'svc', 'reviews', '-n', 'shop']);
    assert.match(other.stderr, /services "reviews" not found in namespace shop \(it has no Services/);
  });
});

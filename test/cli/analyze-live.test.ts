// `rig analyze` on a running mesh, as `istioctl analyze` on a live cluster: without -f it analyzes
// what a real `rig controlplane` serves (its watched config directory and its connected proxies);
// with -f the files overlay that configuration; --use-live=false analyzes the files alone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, runRig, spawnRig, stopProcess } from '../helpers/cli.ts';
import { startMesh, type Mesh } from '../local/mesh-harness.ts';
import { startRigProxy } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: reviews }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
`;
const virtualService = (host: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: ${host} } }] }]
`;
const BROKEN_ROUTE = 'Error [IST0101] (VirtualService default/reviews) spec.http[0].route[0].destination.host: Referenced host not found: "reviewz"';

describe('rig analyze on a running control plane', () => {
  let dir: string;
  let config: string;
  let url: string;
  let xdsPort: number;
  let cpLog = '';
  let stop: () => Promise<void>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'rig-analyze-live-'));
    config = path.join(dir, 'config');
    fs.mkdirSync(config);
    fs.writeFileSync(path.join(config, 'reviews.yaml'), `${SERVICE}---\n${virtualService('reviews')}`);
    const portsFile = path.join(dir, 'ports.json');
    // A root namespace other than istio-system: rig analyze must read it from the control plane.
    const meshConfig = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(meshConfig, 'rootNamespace: mesh-root\n');
    const cp = spawnRig(['controlplane', '--config', config, '--mesh-config', meshConfig, '--no-ca', '--xds-port', '0', '--monitoring-port', '0', '--ports-file', portsFile, '--log-format', 'text']);
    cp.stderr?.on('data', (b: Buffer) => (cpLog += b));
    stop = () => stopProcess(cp);
    const ports = await waitFor(() => `the control plane's ports file\n${cpLog}`, () => (fs.existsSync(portsFile) ? (JSON.parse(fs.readFileSync(portsFile, 'utf8')) as { xds: number; monitoring: number }) : undefined), 90_000);
    url = `http://127.0.0.1:${ports.monitoring}`;
    xdsPort = ports.xds;
  });
  after(async () => {
    await stop?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const analyze = (...args: string[]) => runRig(['analyze', '--controlplane', url, ...args]);
  /** Writes a file into the served directory and waits until the control plane serves it (`rig get <type> -A -o json` shows `until`). */
  const apply = async (file: string, text: string, type: string, until: (json: string) => boolean) => {
    fs.writeFileSync(path.join(config, file), text);
    await waitFor(() => `the control plane serving ${file}\n${cpLog}`, async () => {
      const r = await runRig(['get', type, '-A', '-o', 'json', '--controlplane', url]);
      return until(r.stdout) ? true : undefined;
    });
  };

  it('a clean live configuration: istioctl\'s summary for the namespace, exit 0', async () => {
    const r = await analyze();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // As istioctl, the summary goes to stderr: stdout has the findings only.
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '✔ No validation issues found when analyzing namespace: default.\n');
    const json = await analyze('-o', 'json');
    assert.equal(json.stdout, '[]\n');
    assert.equal(json.stderr, '✔ No validation issues found when analyzing namespace: default.\n');
  });

  it('a broken VirtualService applied to the mesh: IST0101 naming the live resource (no file position), exit 79', async () => {
    await apply('reviews.yaml', `${SERVICE}---\n${virtualService('reviewz')}`, 'virtualservices', (vs) => vs.includes('reviewz'));
    const r = await analyze();
    assert.equal(r.code, 79, r.stdout + r.stderr);
    assert.ok(r.stdout.startsWith(BROKEN_ROUTE), r.stdout);
    assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, r.stdout);
    assert.match(r.stderr, /^Error: Analyzers found issues when analyzing namespace: default\.\n/);
    const json = JSON.parse((await analyze('-o', 'json')).stdout) as { code: string; origin: string; reference?: string; path: string }[];
    assert.deepEqual(json.map((m) => [m.code, m.origin, m.reference, m.path]), [['IST0101', 'VirtualService default/reviews', undefined, 'spec.http[0].route[0].destination.host']]);
  });

  it('-f: a file that fixes the live problem makes it go away; --use-live=false (or --use-kube=false) analyzes the file alone', async () => {
    const fix = path.join(dir, 'fix.yaml');
    fs.writeFileSync(fix, virtualService('reviews'));
    const overlaid = await analyze('-f', fix);
    assert.equal(overlaid.code, 0, overlaid.stdout + overlaid.stderr);
    assert.equal(overlaid.stdout, '');
    assert.equal(overlaid.stderr, `✔ No validation issues found when analyzing ${fix}.\n`);
    // Alone, the file's VirtualService names a host nothing defines: the live Service is not there.
    for (const flag of ['--use-live=false', '--use-kube=false']) {
      const alone = await analyze('-f', fix, flag);
      assert.equal(alone.code, 79, alone.stdout + alone.stderr);
      assert.match(alone.stdout, new RegExp(`^Error \\[IST0101\\] \\(VirtualService default/reviews ${fix}:6:43\\) spec\\.http\\[0\\]\\.route\\[0\\]\\.destination\\.host: Referenced host not found: "reviews"`));
    }
    // A file that breaks what is live is reported at its position.
    const breaking = path.join(dir, 'breaking.yaml');
    fs.writeFileSync(breaking, virtualService('ratingz'));
    const broken = await analyze('-f', breaking);
    assert.equal(broken.code, 79);
    assert.ok(broken.stdout.startsWith(`Error [IST0101] (VirtualService default/reviews ${breaking}:6:43)`), broken.stdout);
    assert.doesNotMatch(broken.stdout, /reviewz/, 'the live VirtualService the file replaces is not analyzed');
  });

  it('-n and -A: the namespace analyzed, or all of them', async () => {
    await apply('shop.yaml', virtualService('nowhere').replace('{ name: reviews }', '{ name: cart, namespace: shop }'), 'virtualservices', (vs) => vs.includes('nowhere'));
    const defaultNs = await analyze();
    assert.doesNotMatch(defaultNs.stdout, /shop\/cart/);
    const shop = await analyze('-n', 'shop');
    assert.match(shop.stdout, /^Error \[IST0101\] \(VirtualService shop\/cart\) spec\.http\[0\]\.route\[0\]\.destination\.host: Referenced host not found: "nowhere"/m);
    assert.doesNotMatch(shop.stdout, /default\/reviews/);
    assert.match(shop.stderr, /when analyzing namespace: shop\./);
    const all = await analyze('-A');
    assert.match(all.stdout, /\(VirtualService shop\/cart\)/);
    assert.match(all.stderr, /when analyzing all namespaces\./);
    // A file's own resources are reported whatever namespace they are in: they are what was asked about.
    const file = path.join(dir, 'shop-file.yaml');
    fs.writeFileSync(file, virtualService('elsewhere').replace('{ name: reviews }', '{ name: basket, namespace: shop }'));
    const withFile = await analyze('-f', file);
    assert.match(withFile.stdout, new RegExp(`^Error \\[IST0101\\] \\(VirtualService shop/basket ${file}:6:43\\)`, 'm'));
    assert.match(withFile.stdout, /^Error \[IST0109\] \(VirtualService shop\/basket .*The VirtualServices shop\/cart and shop\/basket associated with mesh gateway define the same host reviews\.shop\.svc\.cluster\.local/m, 'the file against the live configuration');
    assert.doesNotMatch(withFile.stdout, /\(VirtualService shop\/cart\)/, 'the live resources of other namespaces are not reported on');
    fs.rmSync(path.join(config, 'shop.yaml'));
    await waitFor('shop/cart gone', async () => ((await analyze('-A')).stdout.includes('shop/cart') ? undefined : true));
  });

  it('a selector that matches a connected proxy selects a workload', async (t) => {
    // A WorkloadEntry makes the namespace's workloads part of the analysis; the policy selects none of them.
    const policy = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ratings }
spec:
  selector: { matchLabels: { app: ratings } }
  action: DENY
  rules: [{ to: [{ operation: { paths: [/admin] } }] }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: details-vm }
spec: { address: 127.0.0.2, labels: { app: details } }
`;
    await apply('reviews.yaml', `${SERVICE}---\n${virtualService('reviews')}---\n${policy}`, 'authorizationpolicies', (ap) => ap.includes('ratings'));
    const alone = await analyze();
    assert.equal(alone.code, 0, 'a warning does not fail the run');
    assert.match(alone.stdout, /^Warning \[IST0127\] \(AuthorizationPolicy default\/ratings\) spec\.selector\.matchLabels: No matching workloads for this resource with the following labels: app=ratings/m);
    const proxy = startRigProxy(t, ['--mode', 'router', '--namespace', 'default', '--workload-name', 'ratings-0', '--labels', 'app=ratings'], { xdsPort });
    await proxy.started();
    const afterConnect = await waitFor(() => `the analysis to see the connected proxy\n${proxy.log()}`, async () => {
      const r = await analyze();
      return r.stdout.includes('IST0127') ? undefined : r;
    });
    assert.equal(afterConnect.code, 0, afterConnect.stdout + afterConnect.stderr);
    await stopProcess(proxy.process);
  });

  it("IST0162: a Gateway port that the Service of its connected gateway proxy does not lead to", async (t) => {
    await apply(
      'gateway.yaml',
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: 80, name: http, protocol: HTTP }, hosts: ['*'] }
  - { port: { number: 8443, name: http-alt, protocol: HTTP }, hosts: ['*'] }
---
apiVersion: v1
kind: Service
metadata: { name: istio-ingressgateway, namespace: istio-system }
spec:
  selector: { istio: ingressgateway }
  ports: [{ name: http2, port: 80 }]
`,
      'gateways',
      (gw) => gw.includes('8443'),
    );
    assert.doesNotMatch((await analyze()).stdout, /IST0162/, 'no gateway workload known yet');
    const gateway = startRigProxy(t, ['--mode', 'router', '--namespace', 'istio-system', '--workload-name', 'istio-ingressgateway-0', '--labels', 'istio=ingressgateway'], { xdsPort });
    await gateway.started();
    const r = await waitFor(() => `IST0162 once the gateway is connected\n${gateway.log()}`, async () => {
      const r = await analyze();
      return r.stdout.includes('IST0162') ? r : undefined;
    });
    assert.equal(r.code, 0, 'a warning');
    assert.deepEqual(
      r.stdout.split('\n').filter((l) => l.includes('IST0162')),
      ['Warning [IST0162] (Gateway default/gw) spec.servers[1].port.number: The gateway is listening on a target port (port 8443) that is not defined in the Service associated with its workload instances (Pod selector istio=ingressgateway). If you need to access the gateway port through the gateway Service, it will not be available. — add port 8443 (or a targetPort 8443) to the Service selecting istio=ingressgateway, or serve a port it has'],
    );
    await stopProcess(gateway.process);
  });

  it("the root namespace is the control plane's (/debug/mesh: its mesh config's rootNamespace), not istio-system", async () => {
    const mesh = (await (await fetch(`${url}/debug/mesh`)).json()) as { rootNamespace: string; trustDomain: string };
    assert.deepEqual([mesh.rootNamespace, mesh.trustDomain], ['mesh-root', 'cluster.local']);
    // A policy of the root namespace selects workloads of every namespace: here the ratings VM of shop.
    await apply(
      'root.yaml',
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: mesh-wide-ratings, namespace: mesh-root }
spec:
  selector: { matchLabels: { app: ratings } }
  action: DENY
  rules: [{ to: [{ operation: { paths: [/admin] } }] }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: gate-vm, namespace: mesh-root }
spec: { address: 127.0.0.3, labels: { app: gate } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-vm, namespace: shop }
spec: { address: 127.0.0.4, labels: { app: ratings } }
`,
      'authorizationpolicies',
      (ap) => ap.includes('mesh-wide-ratings'),
    );
    const r = await analyze('-n', 'mesh-root');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '✔ No validation issues found when analyzing namespace: mesh-root.\n');
    const assumed = await analyze('-n', 'mesh-root', '--root-namespace', 'istio-system');
    assert.match(assumed.stdout, /^Warning \[IST0127\] \(AuthorizationPolicy mesh-root\/mesh-wide-ratings\) spec\.selector\.matchLabels: No matching workloads for this resource with the following labels: app=ratings/m);
  });
});

describe('rig analyze on rig up (found from --state-dir)', () => {
  // Istio's Egress Gateways task: its VirtualService routes the mesh to istio-egressgateway.istio-system,
  // the Service Istio's installation defines, which rig up adds for the egress gateway it starts.
  const task = ['egress-gateway-cnn.yaml', 'service-entry-local-standin.yaml'].map((f) => path.join(REPO_ROOT, 'examples/bookinfo/tasks/egress-gateway', f));
  let mesh: Mesh;
  let watched: string;
  before(async () => {
    watched = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'rig-analyze-up-'));
    mesh = await startMesh('up', ['-f', ...task, watched, '--no-ingress'], { gatewayPorts: [80] });
    await mesh.waitFor((s) => !!s.readyAt, 'the egress gateway ready', 90_000);
  });
  after(async () => {
    await mesh?.stop();
    fs.rmSync(watched, { recursive: true, force: true });
  });

  it("the task analyzes clean on the mesh, where the files alone miss the egress gateway's Service", async () => {
    const live = await mesh.rig(['analyze']);
    assert.equal(live.code, 0, live.stdout + live.stderr);
    assert.equal(live.stdout, '');
    assert.equal(live.stderr, '✔ No validation issues found when analyzing namespace: default.\n');
    const alone = await mesh.rig(['analyze', '-f', ...task, '--use-live=false']);
    assert.equal(alone.code, 79, alone.stdout + alone.stderr);
    assert.match(alone.stdout, /Error \[IST0101\] \(VirtualService default\/direct-cnn-through-egress-gateway .*Referenced host not found: "istio-egressgateway\.istio-system\.svc\.cluster\.local"/);
  });

  it('a broken VirtualService applied with rig apply is reported, exit 79', async () => {
    const file = path.join(mesh.stateDir, 'broken-vs.yaml');
    fs.writeFileSync(file, virtualService('reviewz'));
    const applied = await mesh.rig(['apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stdout + applied.stderr);
    const r = await waitFor(() => `rig analyze to see the applied VirtualService\n${mesh.output().slice(-2000)}`, async () => {
      const r = await mesh.rig(['analyze']);
      return r.code === 79 ? r : undefined;
    });
    assert.ok(r.stdout.startsWith(BROKEN_ROUTE), r.stdout);
    assert.match(r.stdout, /^Warning \[IST0101\] \(VirtualService default\/reviews\) spec\.hosts\[0\]: Referenced host not found: "reviews"/m);
  });

  it('a watched file the mesh refuses is named on stderr (it is not served, so not analyzed)', async () => {
    const bad = path.join(watched, 'bad.yaml');
    fs.writeFileSync(bad, virtualService('reviews').replace('http: [', 'http: [{ timeout: soon, route: [{ destination: { host: reviews } }] }, '));
    await mesh.waitFor((s) => s.configErrors.length > 0, 'the mesh refusing bad.yaml');
    const r = await mesh.rig(['analyze']);
    assert.match(r.stderr, new RegExp(`^The running mesh refuses this configuration \\(the last valid one stays in force; not analyzed\\):\n  ${bad}:6:`, 'm'));
    assert.match(r.stderr, /"soon" is not a duration/);
  });
});

describe('rig analyze with no mesh running', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'rig-analyze-nomesh-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('without -f: a clear error naming how to start a mesh or analyze files', async (t) => {
    // The fallback address is istiod's monitoring port on this host: another mesh may be running there.
    if (await fetch('http://127.0.0.1:15014/ready').then(() => true, () => false)) return t.skip('a control plane listens on 127.0.0.1:15014');
    const r = await runRig(['analyze', '--state-dir', path.join(dir, 'state')]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /no mesh is running .*start one with rig up -f DIR or rig demo, .*rig analyze -f PATH/);
  });

  it('with -f: the files alone, as before', async (t) => {
    if (await fetch('http://127.0.0.1:15014/ready').then(() => true, () => false)) return t.skip('a control plane listens on 127.0.0.1:15014');
    const file = path.join(dir, 'vs.yaml');
    fs.writeFileSync(file, `${SERVICE}---\n${virtualService('reviews')}`);
    const r = await runRig(['analyze', '--state-dir', path.join(dir, 'state'), '-f', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `✔ No validation issues found when analyzing ${file}.\n`);
  });

  it('--controlplane that does not answer is an error, also with -f', async () => {
    const file = path.join(dir, 'vs.yaml');
    fs.writeFileSync(file, virtualService('reviews'));
    const r = await runRig(['analyze', '--controlplane', 'http://127.0.0.1:1', '-f', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no control plane answers at http:\/\/127\.0\.0\.1:1 \(--controlplane\).*--use-live=false/);
  });
});

// istioctl's debugging commands on a running `rig demo`: `rig proxy-config log` (a sidecar's log
// levels, or those of every sidecar -l picks, read and set through their admin /logging), `rig
// proxy-config bootstrap` (its bootstrap from its admin /config_dump), `rootca-compare` (two
// proxies' ROOTCA secrets), `--file` (a saved config dump) and `rig x describe pod` (the
// configuration that applies to a replica, from the control plane's debug endpoints), each checked
// on what must change when the config changes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.ts';
import { ingressGatewayPort, startMesh, type Mesh } from '../local/mesh-harness.ts';
import { startMeshControlPlane } from '../helpers/mesh-control-plane.ts';
import { startSidecar } from '../helpers/rig-proxy.ts';
import { waitFor } from '../helpers/wait.ts';
import { freePort } from '../../src/local/ports.ts';

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

  it('proxy-config log -l: every proxy the selector picks (-n its namespace), each under its name; the others keep theirs', async () => {
    const debug = await rig('pc', 'log', '-l', 'app=reviews', '--level', 'xds-client:debug');
    assert.deepEqual(debug.split('\n').filter((l) => /^\S+\.default:$/.test(l)), ['reviews-v1-0.default:', 'reviews-v2-0.default:', 'reviews-v3-0.default:']);
    assert.equal(debug.split('\n').filter((l) => l === 'active loggers:').length, 3);
    for (const pod of ['reviews-v1-0', 'reviews-v2-0', 'reviews-v3-0']) assert.match(await rig('pc', 'log', pod), /^ {2}xds-client: debug$/m, pod);
    assert.match(await rig('pc', 'log', 'ratings-v1-0'), /^ {2}xds-client: info$/m);
    // A narrower selector resets only what it picks.
    const reset = await rig('pc', 'log', '--selector', 'app=reviews,version!=v1', '-r');
    assert.match(reset, /^reviews-v2-0\.default:\nactive loggers:\n/m);
    assert.doesNotMatch(reset, /reviews-v1-0/);
    assert.match(await rig('pc', 'log', 'reviews-v2-0'), /^ {2}xds-client: info$/m);
    assert.match(await rig('pc', 'log', 'reviews-v1-0'), /^ {2}xds-client: debug$/m);
    assert.match(await rig('pc', 'log', '-l', 'istio=ingressgateway', '-n', 'istio-system'), /^istio-ingressgateway\.istio-system:\nactive loggers:\n/);
    await rig('pc', 'log', 'reviews-v1-0', '-r');

    const none = await mesh.rig(['pc', 'log', '-l', 'app=reviews', '-n', 'shop']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /no proxy of namespace shop matches --selector app=reviews \(connected: .*reviews-v1-0\.default/);
    const both = await mesh.rig(['pc', 'log', 'reviews-v1-0', '-l', 'app=reviews']);
    assert.match(both.stderr, /--selector picks the proxies: give no proxy name/);
    const setBased = await mesh.rig(['pc', 'log', '-l', 'app in (reviews)']);
    assert.match(setBased.stderr, /set-based term "app in \(reviews\)" is not supported/);
  });

  it('proxy-config rootca-compare: proxies of one mesh share a root; a proxy of another mesh does not', async (t) => {
    assert.equal(await rig('pc', 'rootca-compare', 'reviews-v1-0', 'istio-ingressgateway'), 'Both [reviews-v1-0] and [istio-ingressgateway] have the identical ROOTCA, theoretically the connectivity between them is available\n');
    // A sidecar of another control plane, with its own CA, named by its admin URL.
    const other = await startMeshControlPlane(t, { dirPrefix: 'rig-other-mesh-' });
    const outsider = await startSidecar(t, other, { namespace: 'default', name: 'outsider', args: ['--outbound-port', String(await freePort())] });
    const admin = `http://127.0.0.1:${(await outsider.started()).admin}`;
    const r = await waitFor(() => `the outsider's ROOTCA\n${outsider.log()}`, async () => {
      const r = await mesh.rig(['pc', 'rc', 'reviews-v1-0', admin]);
      return r.stderr.includes('no ROOTCA secret yet') ? undefined : r;
    });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`Both \\[reviews-v1-0\\] and \\[${admin.replace(/\./g, '\\.')}\\] have the non identical ROOTCA, theoretically the connectivity between them is unavailable`));
    assert.match((await mesh.rig(['pc', 'rc', 'reviews-v1-0'])).stderr, /rootca-compare compares two proxies/);
  });

  it('proxy-config --file: the tables, secrets and bootstrap of a config dump saved from a proxy', async () => {
    const admin = mesh.process('reviews-v1-0')!.ports.admin;
    const file = write(await (await fetch(`http://127.0.0.1:${admin}/config_dump?include_eds`)).text());
    const clusters = await rig('pc', 'clusters', '-f', file, '--fqdn', 'ratings.default.svc.cluster.local');
    assert.match(clusters, /^SERVICE FQDN +PORT +SUBSET +DIRECTION +TYPE +DESTINATION RULE\nratings\.default\.svc\.cluster\.local +9080 +- +outbound +EDS /);
    assert.equal(await rig('pc', 'clusters', '-f', file, '--fqdn', 'ratings.default.svc.cluster.local', '-o', 'short'), clusters, "istioctl's name for the table");
    assert.match(await rig('pc', 'endpoints', '-f', file, '--cluster', 'outbound|9080||details.default.svc.cluster.local'), /^127\.0\.0\.1:\d+ +HEALTHY +OK +outbound\|9080\|\|details\.default\.svc\.cluster\.local$/m);
    assert.match(await rig('pc', 'secret', '-f', file), /^ROOTCA +CA +ACTIVE +true /m);
    assert.match(await rig('pc', 'bootstrap', '-f', file, '-o', 'short'), /^Node ID: +sidecar~[^~]+~reviews-v1-0\.default~/);
    const named = await mesh.rig(['pc', 'clusters', 'reviews-v1-0', '-f', file]);
    assert.match(named.stderr, /--file reads a saved config dump: give no proxy \(got "reviews-v1-0"\)/);
    const notADump = await mesh.rig(['pc', 'routes', '-f', write('{"configs": 1}')]);
    assert.match(notADump.stderr, /not an Envoy config dump/);
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

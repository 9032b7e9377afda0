// A ProxyRuntime fed by the real XdsClient from a test ADS server, in the test's process: what the
// warming tests (RDS, ECDS) drive. `adsBootstrap` is the bootstrap of a sidecar taking clusters and
// listeners over ADS from that server, also written to a file for a `rig proxy` process.
import type { TestContext } from 'node:test';
import pino from 'pino';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { ProxyRuntime } from '../../src/proxy/runtime.ts';
import { XdsClient } from '../../src/proxy/xds-client/index.ts';
import { AdsTestServer } from '../xds-client/ads-test-server.ts';
import { staticCluster } from './harness.ts';

export function adsBootstrap(adsPort: number): EnvoyJson {
  return {
    node: { id: 'sidecar~127.0.0.1~app.default~default.svc.cluster.local', cluster: 'app.default' },
    dynamic_resources: {
      ads_config: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: { clusters: [staticCluster('xds-grpc', [adsPort])] },
  };
}

/** The runtime, its ADS server and the proxy's warnings and above (`log`); all stopped when the test ends. */
export async function startFedRuntime(t: TestContext): Promise<{ ads: AdsTestServer; rt: ProxyRuntime; log: string[] }> {
  const ads = new AdsTestServer();
  const adsPort = await ads.start();
  const log: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void log.push(line) });
  const rt = new ProxyRuntime({ node: { id: 'sidecar~127.0.0.1~app.default~default.svc.cluster.local', cluster: 'app.default', metadata: {} }, log: logger });
  const client = new XdsClient({ bootstrap: adsBootstrap(adsPort), sink: rt, log: logger, backoff: { initialMs: 50, maxMs: 200 } });
  t.after(async () => {
    client.stop();
    rt.stop();
    await ads.stop();
  });
  client.start();
  return { ads, rt, log };
}

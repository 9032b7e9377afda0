// The parts of undici the proxy uses, for HTTP/2 and h2c upstream pools only (HTTP/1.1 pools are
// h1-pool/): Pool and the connector, nothing of its request APIs (everything goes through
// dispatch). Loaded on the first HTTP/2 pool: a proxy whose upstreams all speak HTTP/1.1 never
// loads undici. undici's main entry also loads fetch, WebSocket, EventSource, the cache and the
// mock agents: importing the two modules instead costs far less (measured with the request API
// too: +5.2 → +2.4 MB heap, +25 → +13 MB RSS at import, undici 8.13).
import { createRequire } from 'node:module';
import type { Pool as PoolClass, buildConnector as BuildConnector } from 'undici';

export interface Undici {
  readonly Pool: typeof PoolClass;
  readonly buildConnector: typeof BuildConnector;
}

let loaded: Undici | undefined;

export function undici(): Undici {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  loaded = {
    Pool: require('undici/lib/dispatcher/pool.js') as typeof PoolClass,
    buildConnector: require('undici/lib/core/connect.js') as typeof BuildConnector,
  };
  return loaded;
}

// The parts of undici the proxy uses, for HTTP/2 and h2c upstream pools only (HTTP/1.1 pools are
// h1-pool/): Pool and the connector, nothing of its request APIs (everything goes through
// dispatch). Loaded on the first HTTP/2 pool: a proxy whose upstreams all speak HTTP/1.1 never
// loads undici. undici's main entry also loads fetch, WebSocket, EventSource, the cache and the
// mock agents: importing the two modules instead costs far less (measured with the request API
// too: +5.2 → +2.4 MB heap, +25 → +13 MB RSS at import, undici 8.13).
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Dispatcher, Pool as PoolClass, buildConnector as BuildConnector } from 'undici';
import { H2StreamBody, isLentBody } from './h2-stream-body.ts';

export interface Undici {
  readonly Pool: typeof PoolClass;
  readonly buildConnector: typeof BuildConnector;
}

let loaded: Undici | undefined;

export function undici(): Undici {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const Pool = require('undici/lib/dispatcher/pool.js') as typeof PoolClass;
  loaded = {
    Pool: class H2Pool extends Pool {
      // A body still streaming goes over as an iterable (h2-stream-body.ts says why); one that has
      // ended already stays a stream, for undici to send its length (not a lent downstream request:
      // undici's pipeline() would destroy it).
      override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        const body = opts.body as (Readable & { _readableState?: { ended?: boolean } }) | null | undefined;
        if (!(body instanceof Readable) || (body._readableState?.ended !== false && !isLentBody(body))) return super.dispatch(opts, handler);
        const iterable = new H2StreamBody(body, handler);
        // undici's types omit the iterables it takes as a body.
        return super.dispatch({ ...opts, body: iterable as unknown as Readable }, iterable);
      }
    },
    buildConnector: require('undici/lib/core/connect.js') as typeof BuildConnector,
  };
  return loaded;
}

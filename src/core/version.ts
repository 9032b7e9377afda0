import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// Resolved relative to this file both from src/ and from dist/.
export const VERSION: string = (require('../../package.json') as { version: string }).version;

/**
 * The Istio release whose API (the vendored CRDs) and istiod behaviour Rigging follows. rig proxy reports it
 * as node metadata ISTIO_VERSION, as istio-agent reports its own: EnvoyFilter match.proxy.proxyVersion and
 * istioctl-style tooling read it.
 */
export const ISTIO_VERSION = '1.31.0';

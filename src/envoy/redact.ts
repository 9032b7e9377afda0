// What a config dump must not show: a secret's private key (as Envoy redacts it) and the registry
// credentials istiod hands its agent for a WasmPlugin's image (the agent strips them before Envoy
// sees the config; rig proxy is both). The proxy's /config_dump and the control plane's
// /debug/config_dump?proxyID= share these.
import type { EnvoyJson } from './index.ts';

const REDACTED = '[redacted]';

/** The Wasm VM env key istiod puts a WasmPlugin's imagePullSecret under. */
export const PULL_SECRET_ENV = 'ISTIO_META_WASM_IMAGE_PULL_SECRET';

/** The secret with its private key replaced; the same object when it has none. */
export function redactPrivateKey(secret: EnvoyJson): EnvoyJson {
  const tc = secret.tls_certificate as EnvoyJson | undefined;
  if (!tc?.private_key) return secret;
  return { ...secret, tls_certificate: { ...tc, private_key: { inline_string: REDACTED } } };
}

/** The listener with every Wasm VM's pull secret replaced; the same object when it has none (the common case). */
export function redactPullSecrets(listener: EnvoyJson): EnvoyJson {
  return JSON.stringify(listener).includes(PULL_SECRET_ENV) ? replacePullSecrets(structuredClone(listener)) : listener;
}

function replacePullSecrets(v: EnvoyJson): EnvoyJson {
  for (const [k, x] of Object.entries(v)) {
    if (k === PULL_SECRET_ENV && typeof x === 'string' && x) v[k] = REDACTED;
    else if (x && typeof x === 'object') replacePullSecrets(x as EnvoyJson);
  }
  return v;
}

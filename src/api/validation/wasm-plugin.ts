// WasmPlugin rules, after Istio's validating webhook and the CRD's rules, and what rig does not do
// with a valid WasmPlugin: it checks no signatures (verificationKey, as Istio), runs only HTTP plugins. Remote
// urls (http(s)://, oci://, a reference without a scheme) are fetched by rig proxy as by Istio's agent.
import type { WasmPluginSpec } from '../types/extensions.ts';
import { checkAttachment } from './common.ts';
import type { Reporter } from './reporter.ts';

export function validateWasmPlugin(spec: WasmPluginSpec, r: Reporter): void {
  checkAttachment(spec, r);
  const url = spec.url ?? '';
  const local = url.startsWith('file://') || url.startsWith('/');
  if (url.startsWith('file://') && url.length === 'file://'.length) r.error(['spec', 'url'], 'file:// needs a path', 'write url: file:///path/to/plugin.wasm');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (spec.sha256 && local) r.warn(['spec', 'sha256'], 'sha256 is not checked for a local file (Envoy checks it only for remote code)', 'remove sha256, or keep it as a note');
  const oci = !local && (scheme === 'oci' || scheme === undefined);
  if (spec.imagePullSecret && !oci) r.warn(['spec', 'imagePullSecret'], 'imagePullSecret is used only to pull oci:// images', 'remove the field');
  if (spec.imagePullPolicy && spec.imagePullPolicy !== 'UNSPECIFIED_POLICY' && local) r.warn(['spec', 'imagePullPolicy'], 'imagePullPolicy has no effect on a local file', 'remove the field');
  // istio/api extensions/v1alpha1/wasm.proto: "$hide_from_docs ... this field will not be implemented until the detailed
  // design is established"; istiod and istio-agent's Wasm fetcher (pkg/wasm) never read it, so Istio verifies no signature either.
  if (spec.verificationKey) r.warn(['spec', 'verificationKey'], 'verificationKey is not supported by Rigging and has no effect (not implemented by Istio either): no signature is verified', 'pin the module with sha256 (checked for remote code), or remove the field');
  if (spec.type === 'NETWORK') r.warn(['spec', 'type'], 'a NETWORK plugin sees the bytes of TCP chains only: before an HTTP connection manager rig proxy gives it the connection and its close, not the bytes', 'use an HTTP plugin (type HTTP) for HTTP traffic');
}

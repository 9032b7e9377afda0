// WasmPlugin rules, after Istio's validating webhook and the CRD's rules, and what rig does not do
// with a valid WasmPlugin: it fetches no images (oci://, http(s)://), pulls nothing (imagePullPolicy,
// imagePullSecret), checks no signatures (verificationKey), runs only HTTP plugins.
import type { WasmPluginSpec } from '../types/extensions.ts';
import { checkAttachment } from './common.ts';
import type { Reporter } from './reporter.ts';

export function validateWasmPlugin(spec: WasmPluginSpec, r: Reporter): void {
  checkAttachment(spec, r);
  const url = spec.url ?? '';
  const local = url.startsWith('file://') || url.startsWith('/');
  if (url.startsWith('file://') && url.length === 'file://'.length) r.error(['spec', 'url'], 'file:// needs a path', 'write url: file:///path/to/plugin.wasm');
  if (!local) {
    r.warn(
      ['spec', 'url'],
      `rig cannot fetch Wasm images or remote modules (${url}): ${spec.failStrategy === 'FAIL_OPEN' ? 'with FAIL_OPEN the plugin is left out' : 'the plugin is replaced by a filter that denies every request (fail closed)'}`,
      "put the module on the proxy's machine and use url: file:///path/to/plugin.wasm",
    );
  }
  if (spec.sha256 && local) r.warn(['spec', 'sha256'], 'sha256 is not checked for a local file (Envoy checks it only for remote code)', 'remove sha256, or keep it as a note');
  if (spec.imagePullPolicy && spec.imagePullPolicy !== 'UNSPECIFIED_POLICY') r.warn(['spec', 'imagePullPolicy'], 'imagePullPolicy has no effect: rig pulls no images', 'remove the field');
  if (spec.imagePullSecret) r.warn(['spec', 'imagePullSecret'], 'imagePullSecret has no effect: rig pulls no images', 'remove the field');
  if (spec.verificationKey) r.warn(['spec', 'verificationKey'], 'verificationKey is not supported: rig verifies no signatures', 'remove the field');
  if (spec.type === 'NETWORK') r.warn(['spec', 'type'], 'type NETWORK is not supported: rig proxy runs only HTTP Wasm plugins; the plugin is not applied', 'use an HTTP plugin (type HTTP)');
  if (spec.failStrategy === 'FAIL_RELOAD') r.warn(['spec', 'failStrategy'], 'FAIL_RELOAD is not supported: a failed VM is not reloaded; it fails closed (503) as FAIL_CLOSE', 'use FAIL_CLOSE or FAIL_OPEN');
}

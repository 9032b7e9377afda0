// ProxyConfig rules, after Istio's validating webhook (a valid selector; concurrency >= 0, which the
// CRD's minimum also says), and what a valid ProxyConfig does not do with rig proxy: it runs one
// event loop (concurrency), and local proxies have no container image (image).
import type { ProxyConfigSpec } from '../types/proxy-config.ts';
import { checkSelector } from './common.ts';
import type { Reporter } from './reporter.ts';

/** Kubernetes' rule for a container's environment variable names (what the injected pod must pass). */
export const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export function validateProxyConfig(spec: ProxyConfigSpec, r: Reporter): void {
  checkSelector(spec.selector, ['spec', 'selector'], r);
  // istiod: no selector means the whole namespace, a selector without labels matches no workload.
  if (spec.selector && Object.keys(spec.selector.matchLabels ?? {}).length === 0) {
    r.warn(['spec', 'selector'], 'a selector without matchLabels selects no workload (Istio applies it neither to the namespace nor to any workload)', 'remove selector to apply the ProxyConfig to the whole namespace, or add matchLabels');
  }
  for (const name of Object.keys(spec.environmentVariables ?? {})) {
    if (!ENV_VAR_NAME.test(name)) r.warn(['spec', 'environmentVariables', name], `"${name}" is not an environment variable name Kubernetes accepts: the injected pod would be refused, and rig up leaves it out of the sidecar's environment`, 'use letters, digits, _ - . and no leading digit', { key: true });
  }
  if (spec.concurrency !== undefined && spec.concurrency !== null && spec.concurrency !== 1) {
    r.warn(['spec', 'concurrency'], `rig proxy runs on one event loop (one worker thread, as Envoy with concurrency 1): concurrency ${spec.concurrency} is not applied`, 'remove concurrency, or set it to 1; run more replicas to use more cores');
  }
  if (spec.image !== undefined) r.warn(['spec', 'image'], 'image has no effect: rig up runs rig proxy as a local process, not from a container image', 'remove image');
}

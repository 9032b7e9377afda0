// The request headers every Bookinfo service copies from its incoming request to its outgoing
// calls, as Istio requires of applications so that the sidecars' spans join into one trace
// (the same list as Istio's Bookinfo services).
import type { IncomingHttpHeaders } from 'node:http';

export const PROPAGATED_HEADERS = [
  'x-request-id',
  // W3C Trace Context
  'traceparent',
  'tracestate',
  // Zipkin B3, single and multi header
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  // OpenTracing, Datadog, Google Cloud, gRPC, SkyWalking
  'x-ot-span-context',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'sw8',
  // end-user identity and the headers Istio's request-routing and JWT tasks match on
  'end-user',
  'user-agent',
  'cookie',
  'authorization',
  'jwt',
] as const;

/** The propagated headers present on `incoming`, ready to send on an outgoing request. */
export function propagatedHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATED_HEADERS) {
    const v = incoming[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

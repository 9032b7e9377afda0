// The tracer hook (HCM `tracing`): a TracerFactory keyed by the provider's typed_config @type
// compiles the HCM tracing block once per update; per request the connection manager asks the
// tracer for a span, lets it inject context into the upstream request headers, and finishes it
// with the StreamInfo when the stream ends. Add one with registerTracer() from a setup() listed
// in src/proxy/extensions.ts.
import type { Reader, Issues } from '../config/reader.ts';
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import type { ProxyContext } from '../context.ts';
import type { RequestIdConfig } from './request-id.ts';

export interface Span {
  /** Adds trace context to the request about to go upstream (traceparent, b3...). */
  injectContext(head: RequestHead): void;
  finish(info: StreamInfo, request: RequestHead, response: ResponseHead | undefined): void;
}

export interface Tracer {
  /** Starts the server/client span for a request (after x-request-id is set); undefined when not sampled. */
  startSpan(head: RequestHead, info: StreamInfo): Span | undefined;
}

export interface TracerContext {
  readonly issues: Issues;
  /** The HCM's stat_prefix and traffic direction (Istio: inbound/outbound). */
  readonly statPrefix: string;
  readonly direction: StreamInfo['direction'];
  /** The running proxy (node, stats, collector clusters). */
  readonly proxy: ProxyContext;
  /** The connection manager's request ID extension: how the sampling decision is taken and kept. */
  readonly requestId: RequestIdConfig;
}

export interface TracerFactory {
  readonly name: string;
  /** Provider typed_config @type URLs; the empty string registers a tracer used when `tracing` has no provider. */
  readonly typeUrls: readonly string[];
  /** `tracing` is the whole HCM tracing block (random_sampling, custom_tags, provider...). */
  compile(tracing: Reader, ctx: TracerContext): Tracer;
}

const byType = new Map<string, TracerFactory>();

export function registerTracer(f: TracerFactory): void {
  for (const t of f.typeUrls) byType.set(t, f);
}

export function compileTracer(tracing: Reader | undefined, ctx: TracerContext): Tracer | undefined {
  if (!tracing) return undefined;
  const provider = tracing.raw.provider as Record<string, unknown> | undefined;
  const t = String((provider?.typed_config as Record<string, unknown> | undefined)?.['@type'] ?? '');
  const f = byType.get(t);
  if (!f) {
    tracing.issues.warn(tracing.path, `no tracer registered for ${t || 'the default provider'}; tracing is off for this connection manager`);
    tracing.accept(...Object.keys(tracing.raw));
    return undefined;
  }
  return f.compile(tracing, ctx);
}

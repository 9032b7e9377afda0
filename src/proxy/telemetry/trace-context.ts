// Trace context propagation: W3C traceparent/tracestate, B3 multi-header (x-b3-*) and B3 single
// (`b3`), plus Envoy's x-envoy-force-trace. Each tracer reads the formats its Envoy counterpart
// reads: the OpenTelemetry tracer W3C only; the Zipkin tracer B3 (single `b3` first, then x-b3-*),
// and W3C only as a fallback with trace_context_option USE_B3_WITH_W3C_PROPAGATION. A present but
// malformed header of a format the tracer reads makes no span at all (Envoy's NullSpan): the
// request passes with its headers untouched. Injection writes the tracer's own format — W3C for
// OpenTelemetry, B3 multi-header for Zipkin (with W3C too when configured) — plus `b3` when the
// request came with it.
import { randomBytes } from 'node:crypto';
import type { HeaderMap } from '../filters/filter.ts';
import { firstHeaderValue } from '../http/first-header-value.ts';

/**
 * What a tracer reads and writes, as Envoy's: the OpenTelemetry tracer W3C trace context, the Zipkin tracer
 * B3, or B3 and W3C both (ZipkinConfig trace_context_option USE_B3_WITH_W3C_PROPAGATION).
 */
export const Propagation = { W3C: 0, B3: 1, B3_W3C: 2 } as const;
export type Propagation = (typeof Propagation)[keyof typeof Propagation];

export interface TraceContext {
  traceId: string;
  /** The caller's span (our parent); undefined for a new trace. */
  parentSpanId?: string;
  /** The caller span's own parent (B3 only): the parent of a server span sharing the caller's span context. */
  callerParentId?: string;
  /** The caller's decision; undefined when it made none. */
  sampled?: boolean;
  tracestate?: string;
  /** The request carried a single `b3` header. */
  b3Single: boolean;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

function traceId(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const s = v.toLowerCase().padStart(32, '0');
  return HEX32.test(s) && s !== ZERO32 ? s : undefined;
}

function spanId(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const s = v.toLowerCase();
  return HEX16.test(s) && s !== ZERO16 ? s : undefined;
}

// Ids are cut from a pooled random hex string: one randomBytes() and one hex conversion per ~170
// requests instead of two conversions per request (a saturated telemetry-on proxy spent 0.45 us
// per request in hexSlice; a slice is ~20 ns).
const POOL_BYTES = 4096;
let pool = randomBytes(POOL_BYTES).toString('hex');
let at = 0;

function randomHex(bytes: number): string {
  const n = bytes * 2;
  if (at + n > pool.length) {
    pool = randomBytes(POOL_BYTES).toString('hex');
    at = 0;
  }
  const s = pool.slice(at, at + n);
  at += n;
  return s;
}

export function newTraceId(): string {
  return randomHex(16);
}

/** A 64-bit trace id in OpenTelemetry's 128-bit form (upper half zero), as B3 carries it widened. */
export function newTraceId64(): string {
  return ZERO16 + randomHex(8);
}

export function newSpanId(): string {
  return randomHex(8);
}

/** Envoy's NullSpan: a header the tracer reads is present but malformed. */
export const MALFORMED = 'malformed';

type Extracted = TraceContext | undefined | typeof MALFORMED;

function extractW3C(h: HeaderMap): Extracted {
  const tp = firstHeaderValue(h.traceparent);
  if (tp === undefined) return undefined;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/.exec(tp.trim().toLowerCase());
  if (!m || m[1] === 'ff' || m[2] === ZERO32 || m[3] === ZERO16) return MALFORMED;
  return { traceId: m[2], parentSpanId: m[3], sampled: (parseInt(m[4], 16) & 1) === 1, tracestate: firstHeaderValue(h.tracestate), b3Single: false };
}

function extractB3(h: HeaderMap): Extracted {
  const b3 = firstHeaderValue(h.b3);
  if (b3 !== undefined) {
    const p = b3.trim().split('-');
    if (p.length === 1) {
      // Only a sampling decision ("0", "1", "d").
      if (p[0] === '0' || p[0] === '1' || p[0] === 'd') return { traceId: newTraceId(), sampled: p[0] !== '0', b3Single: true };
      return MALFORMED;
    }
    const t = traceId(p[0]);
    const s = spanId(p[1]);
    const flag = p[2];
    if (!t || !s || p.length > 4 || (flag !== undefined && !['0', '1', 'd'].includes(flag))) return MALFORMED;
    const parent = p[3] === undefined ? undefined : spanId(p[3]);
    if (p[3] !== undefined && !parent) return MALFORMED;
    return { traceId: t, parentSpanId: s, callerParentId: parent, sampled: flag === undefined ? undefined : flag !== '0', b3Single: true };
  }
  const rawTrace = firstHeaderValue(h['x-b3-traceid']);
  const rawSpan = firstHeaderValue(h['x-b3-spanid']);
  const sampledH = firstHeaderValue(h['x-b3-sampled']);
  const sampled = firstHeaderValue(h['x-b3-flags']) === '1' ? true : sampledH === undefined ? undefined : sampledH === '1' || sampledH === 'true';
  if (rawTrace !== undefined && rawSpan !== undefined) {
    const t = traceId(rawTrace);
    const s = spanId(rawSpan);
    const rawParent = firstHeaderValue(h['x-b3-parentspanid']);
    const parent = rawParent ? spanId(rawParent) : undefined;
    if (!t || !s || (rawParent && !parent)) return MALFORMED;
    return { traceId: t, parentSpanId: s, callerParentId: parent, sampled, b3Single: false };
  }
  if (sampled !== undefined) return { traceId: newTraceId(), sampled, b3Single: false };
  return undefined;
}

/**
 * The incoming trace context in the formats a tracer with this propagation reads: undefined when
 * the request carries none, MALFORMED when one it reads cannot be parsed.
 */
export function extractContext(h: HeaderMap, format: Propagation): Extracted {
  if (format === Propagation.W3C) return extractW3C(h);
  const b3 = extractB3(h);
  return b3 === undefined && format === Propagation.B3_W3C ? extractW3C(h) : b3;
}

const PROPAGATION_HEADERS = new Set(['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags']);

/**
 * Whether the request carries a propagation header: one pass over its names, where looking each of
 * the eight up by name cost ~1,100 instructions a request (megamorphic keyed loads, callgrind).
 */
function hasPropagationHeader(h: HeaderMap): boolean {
  for (const k in h) {
    const c = k.charCodeAt(0);
    // traceparent and tracestate, b3, x-b3-*
    if ((c === 0x74 || c === 0x62 || (c === 0x78 && k.charCodeAt(2) === 0x62)) && PROPAGATION_HEADERS.has(k)) return true;
  }
  return false;
}

/** Deletes header k unless this injection writes it again (a delete turns the header object into a dictionary: only when needed). */
function dropUnlessWritten(h: HeaderMap, k: string, written: boolean): void {
  if (!written && h[k] !== undefined) delete h[k];
}

/**
 * Writes the context of span `spanId` (the parent of the next hop) into the request headers, in
 * the tracer's format (a `b3` single header also when the request came with one); the caller's
 * propagation headers are replaced, none is left stale.
 */
export function injectContext(h: HeaderMap, format: Propagation, traceIdHex: string, spanIdHex: string, parentSpanId: string | undefined, sampled: boolean, tracestate: string | undefined, b3Single: boolean): void {
  const w3c = format !== Propagation.B3;
  const b3 = format !== Propagation.W3C;
  if (hasPropagationHeader(h)) {
    dropUnlessWritten(h, 'traceparent', w3c);
    dropUnlessWritten(h, 'tracestate', w3c && !!tracestate);
    dropUnlessWritten(h, 'b3', b3Single);
    dropUnlessWritten(h, 'x-b3-traceid', b3);
    dropUnlessWritten(h, 'x-b3-spanid', b3);
    dropUnlessWritten(h, 'x-b3-parentspanid', b3 && !!parentSpanId);
    dropUnlessWritten(h, 'x-b3-sampled', b3);
    dropUnlessWritten(h, 'x-b3-flags', false);
  }
  if (w3c) {
    h.traceparent = `00-${traceIdHex}-${spanIdHex}-${sampled ? '01' : '00'}`;
    if (tracestate) h.tracestate = tracestate;
  }
  if (!b3 && !b3Single) return;
  // B3 carries a 64-bit trace id (zero upper half) as 16 digits, as it came or as the tracer made it.
  const b3Trace = traceIdHex.startsWith(ZERO16) ? traceIdHex.slice(16) : traceIdHex;
  if (b3) {
    h['x-b3-traceid'] = b3Trace;
    h['x-b3-spanid'] = spanIdHex;
    if (parentSpanId) h['x-b3-parentspanid'] = parentSpanId;
    h['x-b3-sampled'] = sampled ? '1' : '0';
  }
  if (b3Single) h.b3 = `${b3Trace}-${spanIdHex}-${sampled ? '1' : '0'}${parentSpanId ? '-' + parentSpanId : ''}`;
}

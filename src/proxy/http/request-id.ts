// The connection manager's request ID extension (Envoy's envoy.request_id.uuid, the only one and
// the default) and the tracing decision it drives, as Envoy's mutateTracingRequestHeader: with
// use_request_id_for_trace_sampling the x-request-id picks the sample (its first 8 hex digits
// mod 10000), so every proxy on the path decides alike; with pack_trace_reason the decision is
// written into the UUID's version character (position 14) and a later hop keeps it.
import { randomFillSync } from 'node:crypto';
import { UUID_REQUEST_ID_TYPE } from '../../envoy/index.ts';
import type { HeaderMap } from '../filters/filter.ts';
import type { Reader } from '../config/reader.ts';
import { sample, type FractionalPercent } from '../config/fractional-percent.ts';

export interface RequestIdConfig {
  readonly packTraceReason: boolean;
  readonly useForTraceSampling: boolean;
}

export const DEFAULT_REQUEST_ID: RequestIdConfig = { packTraceReason: true, useForTraceSampling: true };

/** Reads HttpConnectionManager.request_id_extension (absent: the UUID extension with its defaults). */
export function readRequestIdExtension(r: Reader | undefined): RequestIdConfig {
  if (!r) return DEFAULT_REQUEST_ID;
  const tc = r.obj('typed_config');
  r.done();
  if (!tc) {
    r.issues.error(r.at('typed_config'), `a request ID extension needs a typed_config (${UUID_REQUEST_ID_TYPE})`);
    return DEFAULT_REQUEST_ID;
  }
  const type = tc.str('@type');
  if (type !== UUID_REQUEST_ID_TYPE) {
    tc.issues.error(tc.at('@type'), `unsupported request ID extension ${type || '(none)'}; only ${UUID_REQUEST_ID_TYPE} is known`);
    tc.accept(...Object.keys(tc.raw));
    return DEFAULT_REQUEST_ID;
  }
  const config = { packTraceReason: tc.bool('pack_trace_reason', true), useForTraceSampling: tc.bool('use_request_id_for_trace_sampling', true) };
  tc.done();
  return config;
}

/**
 * The HCM tracing block's samplings as Envoy's connection manager holds them (random out of
 * 10000, overall and client out of 100), each the default of its runtime key
 * (tracing.random_sampling, tracing.global_enabled, tracing.client_enabled): runtime handles.
 */
export interface TraceSampling {
  readonly random: FractionalPercent;
  readonly overall: FractionalPercent;
  readonly client: FractionalPercent;
}

const POSITION = 14;
const REASON_CHAR = { sampled: '9', forced: 'a', client: 'b', none: '4' } as const;
type Reason = keyof typeof REASON_CHAR;
const UUID_LENGTH = 36;

function readReason(rid: string): Reason {
  if (rid.length !== UUID_LENGTH) return 'none';
  const c = rid[POSITION];
  return c === REASON_CHAR.sampled ? 'sampled' : c === REASON_CHAR.forced ? 'forced' : c === REASON_CHAR.client ? 'client' : 'none';
}

/** featureEnabled with the request id's value as the random value. */
function hits(p: FractionalPercent, value: number): boolean {
  return value % p.denominator < p.numerator;
}

/**
 * Whether the connection manager traces this request (Envoy's HCM decision; a tracer still
 * follows a sampling flag the caller sent). Rewrites x-request-id when it packs a new reason.
 */
export function traceDecision(h: HeaderMap, cfg: RequestIdConfig, sampling: TraceSampling): boolean {
  if (!cfg.useForTraceSampling) return true;
  const raw = h['x-request-id'];
  const rid = Array.isArray(raw) ? raw[0] : raw;
  const value = rid === undefined ? -1 : leadingHex8(rid);
  if (value < 0) return false;
  let reason: Reason = cfg.packTraceReason ? readReason(rid!) : 'none';
  const before = reason;
  if (reason === 'none') {
    if (h['x-client-trace-id'] !== undefined && sample(sampling.client)) reason = 'client';
    else if (h['x-envoy-force-trace'] !== undefined) reason = 'forced';
    else if (hits(sampling.random, value)) reason = 'sampled';
  }
  if (reason !== 'none' && !hits(sampling.overall, value)) reason = 'none';
  if (cfg.packTraceReason && reason !== before) h['x-request-id'] = withReason(rid!, reason);
  return reason !== 'none';
}

/**
 * The value of the id's first 8 hex digits, -1 when it does not start with 8. By char codes: a
 * regular expression test and parseInt of a slice cost ~270 ns per request, this ~10.
 */
function leadingHex8(rid: string): number {
  if (rid.length < 8) return -1;
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const c = rid.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

function withReason(rid: string, reason: Reason): string {
  return rid.length === UUID_LENGTH ? rid.slice(0, POSITION) + REASON_CHAR[reason] + rid.slice(POSITION + 1) : rid;
}

/** An external request id kept at the edge (preserve_external_request_id) loses its trace reason, as Envoy's. */
export function clearTraceReason(rid: string, cfg: RequestIdConfig): string {
  return cfg.packTraceReason && readReason(rid) !== 'none' ? withReason(rid, 'none') : rid;
}

const RANDOM = Buffer.alloc(16 * 256);
let randomAt = RANDOM.length;
const UUID_TEXT = Buffer.alloc(36);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * A new random (version 4) UUID for x-request-id, as crypto.randomUUID makes them (from a pool of
 * random bytes refilled by randomFillSync) but written into one buffer read out as one string:
 * randomUUID concatenates it a character at a time, ~1,600 instructions per request (callgrind).
 */
export function newRequestId(): string {
  if (randomAt === RANDOM.length) {
    randomFillSync(RANDOM);
    randomAt = 0;
  }
  const r = randomAt;
  randomAt += 16;
  let o = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) UUID_TEXT[o++] = 0x2d;
    let v = RANDOM[r + i];
    if (i === 6) v = (v & 0x0f) | 0x40;
    else if (i === 8) v = (v & 0x3f) | 0x80;
    UUID_TEXT[o++] = HEX_DIGITS[v >> 4];
    UUID_TEXT[o++] = HEX_DIGITS[v & 15];
  }
  return UUID_TEXT.toString('latin1');
}

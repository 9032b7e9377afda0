// HTTP/1 header name case (Envoy's Http1ProtocolOptions.header_key_format). Names travel in lower
// case inside the proxy; an HTTP/1 codec writes them that way unless its connection is configured:
// - proper_case_words (stateless): every name written by that codec is proper-cased on the way out
//   ("x-request-id" -> "X-Request-Id"), whatever its source.
// - stateful_formatter preserve_case: the codec that *reads* a message records the case each name
//   came in (first spelling wins, as Envoy's formatter) on the header object itself; whichever
//   HTTP/1 codec writes that message later uses it, so a request keeps the client's case up to the
//   upstream and a response the upstream's case down to the client. Names the proxy added follow
//   formatter_type_on_envoy_headers (lower case, or proper case). With forward_reason_phrase the
//   upstream's reason phrase goes down too.
// As in Envoy, a recorded case wins over the writing connection's proper_case_words, and a message
// read over HTTP/2 has nothing recorded. The record rides on a symbol-keyed, non-enumerable property
// so it is invisible to the router and filters; it is looked for only once some connection of the
// process recorded case (`recording`), so an unconfigured proxy pays nothing per request.
import type { Reader } from '../../config/reader.ts';
import { lowerAscii } from './h1-syntax.ts';
import { detachedString } from '../../../core/detached-string.ts';

export const PRESERVE_CASE_TYPE = 'type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig';

/** A connection's header_key_format, read from config. */
export interface HeaderKeyFormat {
  /** proper_case_words: names this connection writes are proper-cased (unless the message carries a recorded case). */
  readonly properCase: boolean;
  /** stateful_formatter preserve_case: messages this connection reads record their names' case. */
  readonly preserve?: PreserveCaseConfig;
}

export interface PreserveCaseConfig {
  readonly forwardReasonPhrase: boolean;
  /** formatter_type_on_envoy_headers PROPER_CASE: names not seen in the message are proper-cased (DEFAULT: as written, lower case). */
  readonly properCaseOthers: boolean;
}

/** The case a message's names came in with (and its reason phrase), keyed by the lower-case name. */
export class RecordedCase {
  readonly names = new Map<string, string>();
  readonly properCaseOthers: boolean;
  reason: string | undefined;
  constructor(properCaseOthers: boolean) {
    this.properCaseOthers = properCaseOthers;
  }

  format(name: string): string {
    const k = lowerAscii(name);
    const seen = this.names.get(k);
    if (seen !== undefined) return seen;
    return this.properCaseOthers ? properCase(name) : name;
  }
}

/** How an HTTP/1 writer spells header names: undefined (as they are) or a formatter. */
export type NameFormatter = RecordedCase | typeof PROPER_CASE | undefined;

const RECORD = Symbol('rig.h1.recordedCase');
let recording = false;

/**
 * Records the case of a message's names (raw: [name, value, ...] as read) on `headers`, for
 * whichever HTTP/1 writer sends it on. `reason`: the response's reason phrase, kept when configured.
 */
export function recordCase(headers: object, raw: readonly string[], cfg: PreserveCaseConfig, reason?: string): void {
  recording = true;
  const rec = new RecordedCase(cfg.properCaseOthers);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const k = lowerAscii(name);
    if (!rec.names.has(k)) rec.names.set(k, name);
  }
  if (cfg.forwardReasonPhrase && reason) rec.reason = reason;
  Object.defineProperty(headers, RECORD, { value: rec, enumerable: false, writable: true, configurable: true });
}

/** Carries the case recorded on `from` (recordCase) over to `to`, a copy of its headers. */
export function carryRecordedCase(from: object, to: object): void {
  if (!recording) return;
  const rec = (from as { [RECORD]?: RecordedCase })[RECORD];
  if (rec !== undefined) Object.defineProperty(to, RECORD, { value: rec, enumerable: false, writable: true, configurable: true });
}

/**
 * The formatter for writing `headers` on a connection whose own format is `own`: the message's
 * recorded case if it has one, else the connection's proper_case_words, else none.
 */
export function formatterFor(headers: object | null | undefined, own: HeaderKeyFormat | undefined): NameFormatter {
  if (recording && headers) {
    const rec = (headers as { [RECORD]?: RecordedCase })[RECORD];
    if (rec !== undefined) return rec;
  }
  return own?.properCase ? PROPER_CASE : undefined;
}

/** A head (start line, then "name: value" lines, CRLF-separated) with each field name re-spelled by `f`. */
export function respellHead(head: string, f: NonNullable<NameFormatter>): string {
  const lines = head.split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon > 0) lines[i] = f.format(line.slice(0, colon)) + line.slice(colon);
  }
  return lines.join('\r\n');
}

const properCache = new Map<string, string>();

/** Envoy's ProperCaseHeaderKeyFormatter: the first letter and every letter after a non-alphanumeric character upper-cased. */
export function properCase(name: string): string {
  const hit = properCache.get(name);
  if (hit !== undefined) return hit;
  let out = '';
  let upper = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const alpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    out += upper && c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 32) : name[i];
    upper = !alpha && !(c >= 0x30 && c <= 0x39);
  }
  if (properCache.size < 4096) properCache.set(detachedString(name), out);
  return out;
}

const PROPER_CASE = { format: properCase } as const;

/**
 * Http1ProtocolOptions.header_key_format (HCM or cluster). Exactly one of proper_case_words and
 * stateful_formatter; the only stateful formatter is preserve_case (PreserveCaseFormatterConfig).
 */
export function readHeaderKeyFormat(r: Reader | undefined): HeaderKeyFormat | undefined {
  if (!r) return undefined;
  // Both set is refused by the config's proto check (oneof header_format).
  const proper = r.has('proper_case_words');
  const sf = r.obj('stateful_formatter');
  r.done();
  if (proper) {
    r.obj('proper_case_words')?.done();
    return { properCase: true };
  }
  if (!sf) return undefined;
  const name = sf.str('name');
  const tc = sf.obj('typed_config');
  sf.done();
  const type = tc?.str('@type') ?? '';
  if (type !== PRESERVE_CASE_TYPE) {
    r.issues.error(sf.at('typed_config'), `unsupported stateful header formatter ${JSON.stringify(type || name)}: rig proxy has preserve_case only (typed_config @type ${PRESERVE_CASE_TYPE})`);
    return undefined;
  }
  const forwardReasonPhrase = tc!.bool('forward_reason_phrase', false);
  const t = tc!.str('formatter_type_on_envoy_headers', 'DEFAULT');
  tc!.done();
  if (t !== 'DEFAULT' && t !== 'PROPER_CASE') {
    r.issues.error(tc!.at('formatter_type_on_envoy_headers'), `unknown value ${JSON.stringify(t)}: DEFAULT or PROPER_CASE`);
    return undefined;
  }
  return { properCase: false, preserve: { forwardReasonPhrase, properCaseOthers: t === 'PROPER_CASE' } };
}

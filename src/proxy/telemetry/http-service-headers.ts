// HttpService.request_headers_to_add (config.core.v3.HttpService) as Envoy applies it to the
// requests of an HTTP service such as the OpenTelemetry tracer's OTLP/HTTP export: each header
// replaces any of the same name, whatever its append settings; `value` is a substitution format
// string, compiled once and evaluated for each request against an empty StreamInfo started then
// (Envoy's HttpServiceHeadersApplicator): %START_TIME% is the export's time, %HOSTNAME% and
// %ENVIRONMENT(NAME)% are read again, request commands give "". `raw_value` (bytes) is taken as
// is. Envoy's formatter extensions (HttpService.formatters: %FILE_CONTENT%, secrets) are not
// supported: such commands are refused with the other unknown ones.
import type { Reader } from '../config/reader.ts';
import { compileFormatter, type Formatter } from '../routing/header-ops.ts';
import { newStreamInfo } from '../stream-info.ts';

export interface ServiceHeader {
  readonly name: string;
  /** The value as configured (format string or raw bytes): what tells two configs apart. */
  readonly source: string;
  readonly value: Formatter;
}

/** A header's value for one request to the service. */
export function serviceHeaderValue(h: ServiceHeader): string {
  return h.value.constant ?? h.value.format(newStreamInfo('outbound', 'HTTP/1.1'), undefined);
}

/** Headers the export must keep to itself: its framing, target and connection. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'keep-alive', 'te']);

export function readHttpServiceHeaders(hs: Reader): ServiceHeader[] {
  const out: ServiceHeader[] = [];
  for (const opt of hs.objs('request_headers_to_add')) {
    const h = opt.obj('header');
    if (!h) {
      opt.issues.error(opt.at('header'), 'missing header { key, value }');
      opt.accept('append', 'append_action', 'keep_empty_value');
      opt.done();
      continue;
    }
    const key = h.str('key').toLowerCase();
    if (!key) h.issues.error(h.at('key'), 'missing header name');
    else if (key.startsWith(':') || RESERVED.has(key)) h.issues.error(h.at('key'), `header ${key} cannot be set on span exports (the collector's host comes from http_uri.uri)`);
    let source = '';
    let value: Formatter = { constant: '', format: () => '' };
    if (h.has('value') && h.str('value') !== '') value = compileFormatter((source = h.str('value')), h.at('value'), h);
    else if (h.has('raw_value')) {
      const bytes = Buffer.from(h.str('raw_value'), 'base64').toString('latin1');
      source = `raw:${h.str('raw_value')}`;
      value = { constant: bytes, format: () => bytes };
    }
    h.done();
    // Envoy's HTTP service requests overwrite every header they add; other append settings have no effect there.
    const action = opt.str('append_action', 'OVERWRITE_IF_EXISTS_OR_ADD');
    if (action !== 'OVERWRITE_IF_EXISTS_OR_ADD') opt.issues.warn(opt.at('append_action'), `${action} has no effect on an HTTP service's headers: they always replace (OVERWRITE_IF_EXISTS_OR_ADD)`);
    if (opt.bool('append', false)) opt.issues.warn(opt.at('append'), 'has no effect on an HTTP service\'s headers: they always replace');
    // Envoy's HTTP services set an empty value too, whatever keep_empty_value says.
    opt.accept('keep_empty_value');
    opt.done();
    if (key) out.push({ name: key, source, value });
  }
  return out;
}

// HttpService.request_headers_to_add (config.core.v3.HttpService) as Envoy applies it to the
// requests of an HTTP service such as the OpenTelemetry tracer's OTLP/HTTP export: each header
// replaces any of the same name, whatever its append settings; `value` is a substitution format
// string evaluated without a request (%ENVIRONMENT(NAME)%, %HOSTNAME%; request commands give ""),
// `raw_value` (bytes) is taken as is. Values are resolved when the config is compiled; Envoy
// evaluates them again for each export, against an empty StreamInfo, which gives the same value
// for every command rig proxy's formatter accepts (%HOSTNAME%, %ENVIRONMENT%; request commands are
// empty) but %START_TIME% (the export's time in Envoy, the config's here). The commands that make
// Envoy's per-export evaluation matter (a rotating secret or file through %FILE_CONTENT% or
// formatter extensions) are refused here.
import type { Reader } from '../config/reader.ts';
import { compileFormatter } from '../routing/header-ops.ts';
import { newStreamInfo } from '../stream-info.ts';

/** Headers the export must keep to itself: its framing, target and connection. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'keep-alive', 'te']);

export function readHttpServiceHeaders(hs: Reader): [string, string][] {
  const out: [string, string][] = [];
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
    let value = '';
    if (h.has('value') && h.str('value') !== '') value = compileFormatter(h.str('value'), h.at('value'), h).format(newStreamInfo('outbound', 'HTTP/1.1'), undefined);
    else if (h.has('raw_value')) value = Buffer.from(h.str('raw_value'), 'base64').toString('latin1');
    h.done();
    // Envoy's HTTP service requests overwrite every header they add; other append settings have no effect there.
    const action = opt.str('append_action', 'OVERWRITE_IF_EXISTS_OR_ADD');
    if (action !== 'OVERWRITE_IF_EXISTS_OR_ADD') opt.issues.warn(opt.at('append_action'), `${action} has no effect on an HTTP service's headers: they always replace (OVERWRITE_IF_EXISTS_OR_ADD)`);
    if (opt.bool('append', false)) opt.issues.warn(opt.at('append'), 'has no effect on an HTTP service\'s headers: they always replace');
    // Envoy's HTTP services set an empty value too, whatever keep_empty_value says.
    opt.accept('keep_empty_value');
    opt.done();
    if (key) out.push([key, value]);
  }
  return out;
}

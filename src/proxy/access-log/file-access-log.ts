// Envoy's built-in access loggers: envoy.access_loggers.file (FileAccessLog, path may be
// /dev/stdout), stdout and stderr (StdoutAccessLog / StderrAccessLog), with text or JSON formats.
// Lines go through an asynchronous buffered writer (pino's sonic-boom), off the request path.
import pino from 'pino';
import { FILE_ACCESS_LOG_TYPE } from '../../envoy/index.ts';
import type { Reader, Issues } from '../config/reader.ts';
import { registerAccessLogger, type AccessLogger, type AccessLoggerFactory } from './access-log.ts';
import { DEFAULT_FORMAT, compileJsonFormat, compileLogFormat, type LogFormatter } from './access-log-format.ts';
import { compileLogFilter, type LogPredicate } from '../telemetry/access-log-filter.ts';
import type { EnvoyRuntime } from '../envoy-runtime/index.ts';

const STDOUT = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
const STDERR = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

type Destination = ReturnType<typeof pino.destination>;
const destinations = new Map<string, Destination>();

function destination(path: string): Destination {
  const key = path === '/dev/stdout' ? 'fd:1' : path === '/dev/stderr' ? 'fd:2' : path;
  let d = destinations.get(key);
  if (!d) {
    d = key === 'fd:1' ? pino.destination({ fd: 1, sync: false }) : key === 'fd:2' ? pino.destination({ fd: 2, sync: false }) : pino.destination({ dest: path, sync: false, mkdir: true, append: true });
    destinations.set(key, d);
  }
  return d;
}

function readFormat(r: Reader, issues: Issues): LogFormatter {
  const err = (m: string) => issues.error(r.path, m);
  const lf = r.obj('log_format');
  if (lf) {
    let f: LogFormatter;
    const omitEmpty = lf.bool('omit_empty_values', false);
    const ts = lf.obj('text_format_source');
    if (ts) {
      f = compileLogFormat(ts.str('inline_string'), err, omitEmpty);
      ts.done();
    } else if (lf.has('json_format')) f = compileJsonFormat(lf.get('json_format') as Record<string, unknown>, err, omitEmpty);
    else f = compileLogFormat(DEFAULT_FORMAT, err, omitEmpty);
    // content_type only matters where the format renders a body (local replies), as in Envoy.
    lf.accept('content_type', 'formatters');
    if (lf.has('formatters')) lf.issues.warn(lf.at('formatters'), 'formatter extensions are not supported; the built-in commands are used');
    lf.done();
    return f;
  }
  if (r.has('format')) return compileLogFormat(r.str('format'), err);
  if (r.has('json_format')) return compileJsonFormat(r.get('json_format') as Record<string, unknown>, err);
  return compileLogFormat(DEFAULT_FORMAT, err);
}

class FileAccessLogger implements AccessLogger {
  private readonly dest: Destination;
  private readonly fmt: LogFormatter;
  private readonly newline: boolean;
  private readonly filter: LogPredicate | undefined;
  constructor(dest: Destination, fmt: LogFormatter, newline: boolean, filter?: LogPredicate) {
    this.dest = dest;
    this.fmt = fmt;
    this.newline = newline;
    this.filter = filter;
  }
  log(...a: Parameters<AccessLogger['log']>): void {
    if (this.filter && !this.filter(...a)) return;
    const line = this.fmt.format(...a);
    this.dest.write(this.newline && !line.endsWith('\n') ? line + '\n' : line);
  }
}

export const fileAccessLogFactory: AccessLoggerFactory = {
  name: 'envoy.access_loggers.file',
  typeUrls: [FILE_ACCESS_LOG_TYPE, STDOUT, STDERR],
  compile(r: Reader, filter: Reader | undefined, issues: Issues, runtime: EnvoyRuntime): AccessLogger {
    const t = r.str('@type');
    const path = t === STDOUT ? '/dev/stdout' : t === STDERR ? '/dev/stderr' : r.str('path');
    if (!path) issues.error(r.at('path'), 'a file access log needs a path');
    const fmt = readFormat(r, issues);
    r.done();
    // AccessLog.filter: CEL extension filter (Istio's Telemetry filter.expression), status code, flags, ...
    return new FileAccessLogger(destination(path || '/dev/stdout'), fmt, true, filter ? compileLogFilter(filter, runtime) : undefined);
  },
};

export function setup(): void {
  registerAccessLogger(fileAccessLogFactory);
}

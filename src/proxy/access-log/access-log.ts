// Access loggers (HCM `access_log`, tcp_proxy `access_log`), keyed by typed_config @type and
// compiled once per update. How to add one: export an AccessLoggerFactory and a setup() that calls
// registerAccessLogger(factory), and add the setup to src/proxy/extensions.ts. `log` runs when a
// stream ends, on the event loop: keep it cheap and push I/O to a buffered writer.
import type { Reader, Issues } from '../config/reader.ts';
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { NO_RUNTIME, type EnvoyRuntime } from '../envoy-runtime/index.ts';

export interface AccessLogger {
  log(info: StreamInfo, request: RequestHead | undefined, response: ResponseHead | undefined): void;
}

export interface AccessLoggerFactory {
  readonly name: string;
  readonly typeUrls: readonly string[];
  /** `config` is the typed_config; `filter` the AccessLog.filter (undefined when none); `runtime` for the filter's runtime keys. */
  compile(config: Reader, filter: Reader | undefined, issues: Issues, runtime: EnvoyRuntime): AccessLogger;
}

const byType = new Map<string, AccessLoggerFactory>();
const byName = new Map<string, AccessLoggerFactory>();

export function registerAccessLogger(f: AccessLoggerFactory): void {
  byName.set(f.name, f);
  for (const t of f.typeUrls) byType.set(t, f);
}

/** Compiles a list of envoy.config.accesslog.v3.AccessLog entries. */
export function compileAccessLogs(list: Reader[], runtime: EnvoyRuntime = NO_RUNTIME): AccessLogger[] {
  const out: AccessLogger[] = [];
  for (const a of list) {
    const name = a.str('name');
    const tc = a.obj('typed_config');
    const filter = a.obj('filter');
    const t = tc?.str('@type') ?? '';
    const f = byType.get(t) ?? byName.get(name);
    if (!f || !tc) {
      a.issues.error(a.path, `unsupported access logger ${t || name || '(no typed_config)'}; registered: ${[...byType.keys()].join(', ') || 'none'}`);
      a.done();
      continue;
    }
    out.push(f.compile(tc, filter, a.issues, runtime));
    a.done();
  }
  return out;
}

// Header mutations (request/response_headers_to_add and _to_remove) with Envoy's %VARIABLE%
// substitutions, compiled once into literal parts and variable ids.
import os from 'node:os';
import type { Reader } from '../config/reader.ts';
import type { HeaderMap, RequestHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';

type Part = string | { v: string; arg?: string };

export interface Formatter {
  readonly constant: string | undefined;
  format(info: StreamInfo, head: RequestHead | undefined): string;
}

const KNOWN = new Set([
  'DOWNSTREAM_REMOTE_ADDRESS',
  'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_DIRECT_REMOTE_ADDRESS',
  'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_LOCAL_ADDRESS',
  'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_LOCAL_PORT',
  'DOWNSTREAM_PEER_URI_SAN',
  'DOWNSTREAM_PEER_PRINCIPAL',
  'REQUESTED_SERVER_NAME',
  'UPSTREAM_REMOTE_ADDRESS',
  'UPSTREAM_CLUSTER',
  'HOSTNAME',
  'PROTOCOL',
  'START_TIME',
  'REQ',
  'ENVIRONMENT',
  'ROUTE_NAME',
  'RESPONSE_FLAGS',
  'RESPONSE_CODE',
]);

function withoutPort(a: string | undefined): string {
  if (!a) return '';
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']'));
  const i = a.lastIndexOf(':');
  return i > 0 && a.indexOf(':') === i ? a.slice(0, i) : a;
}

function portOf(a: string | undefined): string {
  if (!a) return '';
  const i = a.lastIndexOf(':');
  return i >= 0 ? a.slice(i + 1) : '';
}

function variable(name: string, arg: string | undefined, info: StreamInfo, head: RequestHead | undefined): string {
  switch (name) {
    case 'DOWNSTREAM_REMOTE_ADDRESS':
      return info.downstreamRemoteAddress ?? '';
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      return info.downstreamRemoteIp ?? withoutPort(info.downstreamRemoteAddress);
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
      return info.downstreamDirectRemoteAddress ?? '';
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT':
      return withoutPort(info.downstreamDirectRemoteAddress);
    case 'DOWNSTREAM_LOCAL_ADDRESS':
      return info.downstreamLocalAddress ?? '';
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT':
      return withoutPort(info.downstreamLocalAddress);
    case 'DOWNSTREAM_LOCAL_PORT':
      return portOf(info.downstreamLocalAddress);
    case 'DOWNSTREAM_PEER_URI_SAN':
    case 'DOWNSTREAM_PEER_PRINCIPAL':
      return info.downstreamPeer?.principal ?? '';
    case 'REQUESTED_SERVER_NAME':
      return info.requestedServerName ?? '';
    case 'UPSTREAM_REMOTE_ADDRESS':
      return info.upstreamHost ?? '';
    case 'UPSTREAM_CLUSTER':
      return info.upstreamCluster ?? '';
    case 'HOSTNAME':
      return os.hostname();
    case 'PROTOCOL':
      return info.protocol;
    case 'START_TIME':
      return new Date(info.startTime).toISOString();
    case 'ROUTE_NAME':
      return info.routeName ?? '';
    case 'RESPONSE_CODE':
      return String(info.responseCode);
    case 'ENVIRONMENT':
      return process.env[arg ?? ''] ?? '';
    case 'REQ': {
      if (!head || !arg) return '';
      const v = arg.startsWith(':') ? (arg === ':path' ? head.path : arg === ':method' ? head.method : arg === ':authority' ? head.authority : head.scheme) : head.headers[arg.toLowerCase()];
      return v === undefined ? '' : Array.isArray(v) ? v.join(',') : v;
    }
  }
  return '';
}

export function compileFormatter(text: string, path: string, r: Reader): Formatter {
  if (!text.includes('%')) return { constant: text, format: () => text };
  const parts: Part[] = [];
  let i = 0;
  let lit = '';
  while (i < text.length) {
    if (text[i] === '%') {
      if (text[i + 1] === '%') {
        lit += '%';
        i += 2;
        continue;
      }
      const end = text.indexOf('%', i + 1);
      const m = end > 0 ? /^([A-Z_]+)(?:\(([^)]*)\))?$/.exec(text.slice(i + 1, end)) : null;
      if (!m || !KNOWN.has(m[1])) {
        r.issues.error(path, `unsupported substitution ${end > 0 ? text.slice(i, end + 1) : text.slice(i)} in ${JSON.stringify(text)} (use %% for a literal %)`);
        i = end > 0 ? end + 1 : text.length;
        continue;
      }
      if (lit) parts.push(lit);
      lit = '';
      parts.push({ v: m[1], arg: m[2] });
      i = end + 1;
    } else lit += text[i++];
  }
  if (lit) parts.push(lit);
  return {
    constant: undefined,
    format(info, head) {
      let s = '';
      for (const p of parts) s += typeof p === 'string' ? p : variable(p.v, p.arg, info, head);
      return s;
    },
  };
}

const AppendAction = { AppendOrAdd: 0, AddIfAbsent: 1, OverwriteOrAdd: 2, OverwriteIfExists: 3 } as const;

interface AddOp {
  key: string;
  value: Formatter;
  action: number;
  keepEmpty: boolean;
}

/** One compiled set of header mutations; apply() runs removals then additions. */
export class HeaderOps {
  static readonly EMPTY = new HeaderOps([], []);
  readonly adds: readonly AddOp[];
  readonly removes: readonly string[];
  readonly empty: boolean;

  constructor(adds: AddOp[], removes: string[]) {
    this.adds = adds;
    this.removes = removes;
    this.empty = adds.length === 0 && removes.length === 0;
  }

  /** Concatenates op lists: `this` applies first (Envoy: route, then virtual host, then route config). */
  then(other: HeaderOps): HeaderOps {
    if (other.empty) return this;
    if (this.empty) return other;
    return new HeaderOps([...this.adds, ...other.adds], [...this.removes, ...other.removes]);
  }

  apply(headers: HeaderMap, info: StreamInfo, head: RequestHead | undefined): void {
    for (const k of this.removes) delete headers[k];
    for (const op of this.adds) {
      const v = op.value.constant ?? op.value.format(info, head);
      if (v === '' && !op.keepEmpty) continue;
      const cur = headers[op.key];
      switch (op.action) {
        case AppendAction.AppendOrAdd:
          headers[op.key] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
          break;
        case AppendAction.AddIfAbsent:
          if (cur === undefined) headers[op.key] = v;
          break;
        case AppendAction.OverwriteOrAdd:
          headers[op.key] = v;
          break;
        case AppendAction.OverwriteIfExists:
          if (cur !== undefined) headers[op.key] = v;
          break;
      }
    }
  }
}

const PROTECTED = new Set([':authority', ':path', ':method', ':scheme', 'host', 'connection', 'transfer-encoding', 'upgrade']);

/** Reads `<prefix>_headers_to_add` / `<prefix>_headers_to_remove` of a route, virtual host or route config. */
export function readHeaderOps(r: Reader, prefix: 'request' | 'response'): HeaderOps {
  const adds = readHeaderAdds(r, `${prefix}_headers_to_add`);
  const removes = r.strs(`${prefix}_headers_to_remove`).map((k) => k.toLowerCase());
  for (const k of removes) if (PROTECTED.has(k)) r.issues.error(r.at(`${prefix}_headers_to_remove`), `header ${k} cannot be removed`);
  return adds.length || removes.length ? new HeaderOps(adds, removes) : HeaderOps.EMPTY;
}

/** Reads a list of HeaderValueOption (e.g. a local reply mapper's headers_to_add) as header ops. */
export function readHeadersToAdd(r: Reader, key: string): HeaderOps {
  const adds = readHeaderAdds(r, key);
  return adds.length ? new HeaderOps(adds, []) : HeaderOps.EMPTY;
}

function readHeaderAdds(r: Reader, key: string): AddOp[] {
  const adds: AddOp[] = [];
  for (const a of r.objs(key)) {
    const h = a.obj('header');
    if (!h) {
      a.issues.error(a.at('header'), 'missing header');
      continue;
    }
    const key = h.str('key').toLowerCase();
    if (!key) h.issues.error(h.at('key'), 'missing header name');
    if (PROTECTED.has(key)) h.issues.error(h.at('key'), `header ${key} cannot be set this way`);
    // raw_value: the value as bytes (base64 in JSON), for values that are not valid UTF-8.
    const raw = h.has('raw_value') ? Buffer.from(h.str('raw_value'), 'base64').toString('latin1') : undefined;
    if (raw !== undefined && h.str('value')) h.issues.error(h.path, "only one of 'value' or 'raw_value' can be set");
    const value = raw !== undefined ? compileFormatter(raw, h.at('raw_value'), h) : compileFormatter(h.str('value'), h.at('value'), h);
    h.done();
    let action: number = AppendAction.AppendOrAdd;
    if (a.has('append')) action = a.bool('append', true) ? AppendAction.AppendOrAdd : AppendAction.OverwriteOrAdd;
    const act = a.str('append_action', '');
    if (act === 'ADD_IF_ABSENT') action = AppendAction.AddIfAbsent;
    else if (act === 'OVERWRITE_IF_EXISTS_OR_ADD') action = AppendAction.OverwriteOrAdd;
    else if (act === 'OVERWRITE_IF_EXISTS') action = AppendAction.OverwriteIfExists;
    const keepEmpty = a.bool('keep_empty_value', false);
    a.done();
    adds.push({ key, value, action, keepEmpty });
  }
  return adds;
}

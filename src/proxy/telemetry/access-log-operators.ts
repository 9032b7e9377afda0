// Access log command operators beyond the proxy core's set (src/proxy/access-log/access-log-format.ts
// asks here for commands it does not know): the ones Istio's default formats use
// (%CONNECTION_TERMINATION_DETAILS%), %START_TIME(strftime)%, %CEL(expression)% (Envoy's CEL
// formatter) and a few address/peer commands. DOWNSTREAM_REMOTE_* print the stream's remote address
// after x-forwarded-for processing, DOWNSTREAM_DIRECT_REMOTE_* the connection's peer.
import type { RequestHead, ResponseHead } from '../filters/filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import { compileCel } from './cel-attributes.ts';

type Getter = (i: StreamInfo, q: RequestHead | undefined, r: ResponseHead | undefined) => string | number | undefined;

function withoutPort(a: string | undefined): string | undefined {
  if (!a) return undefined;
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']'));
  const i = a.lastIndexOf(':');
  return i > 0 && a.indexOf(':') === i ? a.slice(0, i) : a;
}

function portOf(a: string | undefined): number | undefined {
  const i = a ? a.lastIndexOf(':') : -1;
  return i > 0 ? Number(a!.slice(i + 1)) : undefined;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** strftime subset (%Y %m %d %H %M %S %z %s %T %F %3f %6f %9f %f %%), UTC, as Envoy's START_TIME(fmt). */
export function strftime(fmt: string, ms: number): string {
  const d = new Date(ms);
  return fmt.replace(/%([369]?f|[YmdHMSzsTF%])/g, (_m, c: string) => {
    switch (c) {
      case 'Y':
        return String(d.getUTCFullYear());
      case 'm':
        return pad(d.getUTCMonth() + 1);
      case 'd':
        return pad(d.getUTCDate());
      case 'H':
        return pad(d.getUTCHours());
      case 'M':
        return pad(d.getUTCMinutes());
      case 'S':
        return pad(d.getUTCSeconds());
      case 'z':
        return '+0000';
      case 's':
        return String(Math.floor(ms / 1000));
      case 'T':
        return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
      case 'F':
        return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
      case '%':
        return '%';
      default: {
        const digits = c === 'f' ? 9 : Number(c[0]);
        return pad(d.getUTCMilliseconds(), 3).padEnd(digits, '0').slice(0, digits);
      }
    }
  });
}

/** The getter for a command the core formatter lacks; undefined when unknown; throws on a bad argument. */
export function extraLogOperator(cmd: string, arg: string | undefined): Getter | undefined {
  switch (cmd) {
    case 'START_TIME':
      return arg ? (i) => strftime(arg, i.startTime) : undefined;
    case 'CONNECTION_TERMINATION_DETAILS':
      return () => undefined;
    case 'RESPONSE_DURATION':
      return (i) => (i.upstreamServiceTimeMs === undefined ? undefined : Math.round(i.upstreamServiceTimeMs));
    case 'UPSTREAM_REMOTE_ADDRESS':
      return (i) => i.upstreamHost;
    case 'UPSTREAM_PEER_URI_SAN':
      return (i) => i.upstreamPeer?.principal;
    case 'UPSTREAM_PEER_SUBJECT':
      return (i) => i.upstreamPeer?.subject;
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
      return (i) => i.downstreamDirectRemoteAddress;
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
      return (i) => i.downstreamRemoteIp ?? withoutPort(i.downstreamRemoteAddress);
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT':
      return (i) => withoutPort(i.downstreamDirectRemoteAddress);
    case 'DOWNSTREAM_REMOTE_PORT':
      return (i) => portOf(i.downstreamRemoteAddress);
    case 'DOWNSTREAM_DIRECT_REMOTE_PORT':
      return (i) => portOf(i.downstreamDirectRemoteAddress);
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT':
      return (i) => withoutPort(i.downstreamLocalAddress);
    case 'CEL': {
      if (!arg) throw new Error('%CEL(expression)% needs an expression');
      const p = compileCel(arg);
      return (i, q, r) => {
        try {
          const v = p(i, q, r);
          return v === undefined || v === null ? undefined : typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : String(v);
        } catch {
          return undefined;
        }
      };
    }
  }
  return undefined;
}

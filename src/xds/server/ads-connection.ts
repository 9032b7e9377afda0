// One ADS stream (state of the world): the proxy, what it watches per type, what was sent, ACKed
// and NACKed (version_info, nonce, error_detail), and the per-name hashes that let a push send
// only what changed for this proxy.
import type { EnvoyJson } from '../../envoy/index.ts';
import type { SpiffeIdentity } from '../../ca/spiffe.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { EncodedResponse } from './encoded-response.ts';

export interface NackRecord {
  version: string;
  nonce: string;
  message: string;
  at: string;
}

/** A resource as sent (the interned packed form: shared by every proxy that holds the same content). */
export interface SentResource {
  name: string;
  hash: string;
  json: EnvoyJson;
}

export interface WatchState {
  /** Requested names; undefined = wildcard. */
  names: string[] | undefined;
  nonceSent?: string;
  versionSent?: string;
  sentAt?: string;
  nonceAcked?: string;
  versionAcked?: string;
  ackedAt?: string;
  lastNack?: NackRecord;
  /** Types sent piecewise (RDS, EDS, SDS): name → what the proxy was sent last (what it holds, unless NACKed). */
  sent: Map<string, SentResource>;
  /** Full-state types (LDS, CDS): the whole set last sent. */
  full: SentResource[] | undefined;
  pushes: number;
  /** A response is out and not yet ACKed/NACKed: further pushes of this type wait (flow control). */
  awaiting: boolean;
  /** A push was held back while awaiting; it is sent when the answer arrives. */
  pending: boolean;
  /** The held-back push covers only these names (EDS of changed hosts); undefined = every watched name. */
  pendingNames?: Set<string>;
  /** The response awaiting its ACK/NACK (counted against the server's in-flight budget). */
  inflight?: EncodedResponse;
}

export class AdsConnection {
  readonly id: string;
  readonly proxy: Proxy;
  readonly connectedAt = new Date();
  readonly peer: string;
  readonly watches = new Map<string, WatchState>();
  closed = false;
  /** The stream's write buffer is full: pushes wait for 'drain' (a client that does not read cannot grow our memory). */
  blocked = false;
  /** Timestamp of the change that the next response answers (for convergence time). */
  pendingSince?: number;
  /** The last workload health report (`istio.io/health`) of an auto-registered proxy. */
  health?: { healthy: boolean; message: string; at: string };
  /** The identity the stream proved (an authenticated TLS stream whose node claims it). */
  identity?: SpiffeIdentity;
  /** Registry key of the health-checked WorkloadEntry this proxy was admitted to control. */
  healthEntry?: string;
  /** A health report came from a proxy that is not auto-registered (logged once). */
  healthIgnored = false;
  readonly #send: (msg: EncodedResponse) => boolean;

  constructor(id: string, proxy: Proxy, peer: string, send: (msg: EncodedResponse) => boolean) {
    this.id = id;
    this.proxy = proxy;
    this.peer = peer;
    this.#send = send;
  }

  send(msg: EncodedResponse): boolean {
    if (this.closed) return false;
    return this.#send(msg);
  }

  watch(typeUrl: string): WatchState {
    let w = this.watches.get(typeUrl);
    if (!w) {
      w = { names: undefined, sent: new Map(), full: undefined, pushes: 0, awaiting: false, pending: false };
      this.watches.set(typeUrl, w);
    }
    return w;
  }
}

export interface DiscoveryResponseJson {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: { type_url: string; value: Uint8Array }[];
}

/** Sync state of one type as istioctl proxy-status shows it. */
export function syncState(w: WatchState | undefined): 'SYNCED' | 'STALE' | 'NOT SENT' | 'NACK' {
  if (!w || !w.nonceSent) return 'NOT SENT';
  if (w.lastNack && w.lastNack.nonce === w.nonceSent) return 'NACK';
  if (w.nonceAcked === w.nonceSent) return 'SYNCED';
  return 'STALE';
}

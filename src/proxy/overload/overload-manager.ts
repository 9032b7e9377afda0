// The overload manager: samples its resource monitors every refresh_interval, turns pressures
// into action states, and exposes them as OverloadState, which the runtime consults on the hot
// path (ProxyContext.overload):
// - stop_accepting_connections: new connections are parked unread, as in a listen backlog, and
//   served in arrival order once the action clears. Node cannot stop polling a listening socket,
//   so the kernel's accept happens anyway; pauseOnConnect keeps the bytes in the kernel, and
//   beyond MAX_PARKED (the listeners' backlog) new connections are closed;
// - reject_incoming_connections: new connections are closed at once (a share of them when scaled);
// - stop_accepting_requests: new requests get 503 "envoy overloaded", flag OM;
// - disable_http_keepalive: HTTP/1 responses carry Connection: close, HTTP/2 sessions are closed
//   gracefully (GOAWAY, in-flight streams finish).
// Actions recover on the first refresh below their triggers.
// Stats: overload.<monitor>.pressure (percent), overload.<action>.active / .scale_percent,
// overload.rejected_connections, overload.parked_connections (gauge), overload.shed_requests,
// overload.keepalive_disabled.
import type net from 'node:net';
import type { Stat, Stats } from '../stats/stats.ts';
import { OverloadAction, type ActionConfig, type OverloadConfig } from './overload-config.ts';
import { createMonitor, type ResourceMonitor } from './overload-monitors.ts';

/** What the request path asks; each call answers for one connection, request or response. */
export interface OverloadState {
  /** reject_incoming_connections: true when the caller must close the new connection. */
  rejectConnection(): boolean;
  /**
   * stop_accepting_connections: true when the manager took the (paused) socket; `accept` runs
   * when the action clears, or the socket is closed when the manager stops or is full.
   */
  parkConnection(socket: net.Socket, accept: () => void): boolean;
  shedRequest(): boolean;
  disableKeepAlive(): boolean;
}

interface ActionState {
  readonly config: ActionConfig;
  readonly active: Stat;
  readonly scale: Stat;
  /** 0 (inactive) … 1 (saturated). */
  value: number;
}

/** The listeners' listen backlog: how many connections may wait while accepting is stopped. */
export const MAX_PARKED = 1024;

interface Parked {
  readonly socket: net.Socket;
  readonly accept: () => void;
}

function noop(): void {}

/** True with probability `v` (1 = always): scaled actions apply to that share of traffic. */
function draw(v: number): boolean {
  return v >= 1 || (v > 0 && Math.random() < v);
}

export class OverloadManager implements OverloadState {
  private readonly config: OverloadConfig;
  private readonly monitors: ResourceMonitor[];
  private readonly pressureStats: Stat[];
  private readonly actions: ActionState[];
  private readonly byName = new Map<string, ActionState>();
  private readonly rejected: Stat;
  private readonly parkedGauge: Stat;
  private parked: Parked[] = [];
  private readonly shed: Stat;
  private readonly keepAliveOff: Stat;
  private timer: NodeJS.Timeout | undefined;
  private stopAccepting = false;
  private reject = 0;
  private requests = 0;
  private keepAlive = 0;

  constructor(config: OverloadConfig, stats: Stats) {
    this.config = config;
    this.monitors = config.monitors.map(createMonitor);
    this.pressureStats = this.monitors.map((m) => stats.gauge(`overload.${m.name}.pressure`));
    this.actions = config.actions.map((a) => ({ config: a, active: stats.gauge(`overload.${a.name}.active`), scale: stats.gauge(`overload.${a.name}.scale_percent`), value: 0 }));
    for (const a of this.actions) this.byName.set(a.config.name, a);
    this.rejected = stats.counter('overload.rejected_connections');
    this.parkedGauge = stats.gauge('overload.parked_connections');
    this.shed = stats.counter('overload.shed_requests');
    this.keepAliveOff = stats.counter('overload.keepalive_disabled');
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.refresh(), this.config.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const m of this.monitors) m.close();
    for (const p of this.takeParked()) p.socket.destroy();
  }

  /** Samples the monitors and updates every action (also called by the timer). */
  refresh(): void {
    const pressure = new Map<string, number>();
    this.monitors.forEach((m, i) => {
      const p = m.pressure();
      pressure.set(m.name, p);
      this.pressureStats[i].value = Math.round(p * 100);
    });
    for (const a of this.actions) {
      let v = 0;
      for (const t of a.config.triggers) {
        const p = pressure.get(t.monitor) ?? 0;
        const tv = p >= t.saturation ? 1 : p > t.scaling ? (p - t.scaling) / (t.saturation - t.scaling) : 0;
        if (tv > v) v = tv;
      }
      a.value = v;
      a.active.value = v >= 1 ? 1 : 0;
      a.scale.value = Math.round(v * 100);
    }
    this.stopAccepting = this.valueOf(OverloadAction.StopAcceptingConnections) >= 1;
    this.reject = this.valueOf(OverloadAction.RejectIncomingConnections);
    this.requests = this.valueOf(OverloadAction.StopAcceptingRequests);
    this.keepAlive = this.valueOf(OverloadAction.DisableHttpKeepAlive);
    if (!this.stopAccepting && this.parked.length) for (const p of this.takeParked()) if (!p.socket.destroyed) p.accept();
  }

  private takeParked(): Parked[] {
    const all = this.parked;
    this.parked = [];
    this.parkedGauge.value = 0;
    return all;
  }

  private valueOf(name: string): number {
    return this.byName.get(name)?.value ?? 0;
  }

  /** Whether an action is saturated now (tests, admin). */
  isActive(name: string): boolean {
    return this.valueOf(name) >= 1;
  }

  rejectConnection(): boolean {
    if (!draw(this.reject)) return false;
    this.rejected.value++;
    return true;
  }

  parkConnection(socket: net.Socket, accept: () => void): boolean {
    if (!this.stopAccepting) return false;
    if (this.parked.length >= MAX_PARKED) {
      // A full backlog: the kernel would drop the SYN; the connection is already accepted here.
      this.rejected.value++;
      socket.destroy();
      return true;
    }
    socket.on('error', noop);
    this.parked.push({ socket, accept });
    this.parkedGauge.value = this.parked.length;
    return true;
  }

  shedRequest(): boolean {
    if (!draw(this.requests)) return false;
    this.shed.value++;
    return true;
  }

  disableKeepAlive(): boolean {
    if (!draw(this.keepAlive)) return false;
    this.keepAliveOff.value++;
    return true;
  }
}

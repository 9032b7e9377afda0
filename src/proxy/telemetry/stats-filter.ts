// istio.stats as an HTTP filter (records Istio's request metrics when the stream ends, with gRPC
// message counts read from the streamed bodies) and as a
// network filter placed before tcp_proxy (connection opened/closed and byte counters, reported
// through tcp_proxy's ConnectionObserver).
import { FilterStatus, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filters/filter.ts';
import type { NetworkFilterFactory, NetworkFilter, DownstreamConnection, ConnectionObserver } from '../network/network-filter.ts';
import type { StreamInfo } from '../stream-info.ts';
import type { Reader } from '../config/reader.ts';
import { attachTelemetry, telemetryOf } from './proxy-telemetry.ts';
import { compileStatsConfig, STATS_FILTER, type StatsConfig } from './stats-config.ts';
import { grpcMessageCells, recordHttp, tcpChildren } from './stats-recorder.ts';
import { GrpcMessageCounter } from './grpc-message-counter.ts';
import type { TcpChildren } from './istio-metrics.ts';

class HttpStatsFilter implements HttpFilter {
  protected readonly c: StatsConfig;
  protected readonly cb: StreamCallbacks;
  protected request: RequestHead | undefined;
  protected response: ResponseHead | undefined;

  constructor(c: StatsConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    this.request = head;
    return FilterStatus.Continue;
  }

  encodeHeaders(head: ResponseHead): void {
    this.response = head;
  }

  onDestroy(): void {
    // Also local replies and resets (response code 0, flags such as DC), as Istio reports them.
    recordHttp(this.c, this.cb.streamInfo, this.request, this.response);
  }
}

/**
 * A gRPC stream also counts its messages each way (istio_request/response_messages_total): every
 * tcp_reporting_duration while it lasts (once its peer is known, as Istio), the rest at its end.
 */
class GrpcStatsFilter extends HttpStatsFilter {
  private readonly requestMessages = new GrpcMessageCounter();
  private readonly responseMessages = new GrpcMessageCounter();
  private reportedRequests = 0;
  private reportedResponses = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(c: StatsConfig, cb: StreamCallbacks) {
    super(c, cb);
    if (c.tcpReportMs > 0) {
      this.timer = setInterval(() => this.report(), c.tcpReportMs);
      this.timer.unref();
    }
  }

  observeRequestData(chunk: Buffer): void {
    this.requestMessages.feed(chunk);
  }

  encodeData(chunk: Buffer): void {
    this.responseMessages.feed(chunk);
  }

  private report(): void {
    const cells = grpcMessageCells(this.c, this.cb.streamInfo, this.request);
    if (!cells) return;
    cells.requestMessages?.inc(this.requestMessages.count - this.reportedRequests);
    cells.responseMessages?.inc(this.responseMessages.count - this.reportedResponses);
    this.reportedRequests = this.requestMessages.count;
    this.reportedResponses = this.responseMessages.count;
  }

  override onDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    recordHttp(this.c, this.cb.streamInfo, this.request, this.response, { requests: this.requestMessages.count - this.reportedRequests, responses: this.responseMessages.count - this.reportedResponses });
  }
}

export const httpStatsFilterFactory: HttpFilterFactory<StatsConfig | undefined> = {
  name: STATS_FILTER,
  typeUrls: [],
  compile(r, ctx) {
    const t = telemetryOf(ctx.stats);
    if (!t) {
      ctx.issues.error(r.path, 'istio.stats: this proxy has no telemetry state (ProxyRuntime attaches it)');
      r.accept(...Object.keys(r.raw));
      return undefined;
    }
    const direction = ctx.statPrefix.startsWith('inbound') ? 'inbound' : 'outbound';
    return compileStatsConfig(r, direction, t);
  },
  create(config, cb) {
    // Only gRPC streams pay for body observation (the stream's protocol is known before its filters exist).
    if (!config) return {};
    return cb.streamInfo.isGrpc ? new GrpcStatsFilter(config, cb) : new HttpStatsFilter(config, cb);
  },
};

/**
 * Istio's TCP metrics of one connection, told by tcp_proxy: opened once the upstream side is known
 * (for the client reporter its peer comes from the upstream metadata exchange), or at the end if
 * the connection never got there; the bytes so far every tcp_reporting_duration while it lives;
 * closed and the remaining bytes at the end, with the final response flags.
 */
class TcpConnectionStats implements ConnectionObserver {
  private readonly c: StatsConfig;
  private opened: TcpChildren | undefined;
  private timer: NodeJS.Timeout | undefined;
  private received = 0;
  private sent = 0;

  constructor(c: StatsConfig) {
    this.c = c;
  }

  upstreamReady(info: StreamInfo, bytes: { readonly aToB: number; readonly bToA: number }): void {
    const ch = (this.opened = tcpChildren(this.c, info));
    ch.opened?.inc();
    if (this.c.tcpReportMs > 0) {
      this.timer = setInterval(() => this.report(ch, bytes.aToB, bytes.bToA), this.c.tcpReportMs);
      this.timer.unref();
    }
  }

  private report(ch: TcpChildren, received: number, sent: number): void {
    ch.received?.inc(received - this.received);
    ch.sent?.inc(sent - this.sent);
    this.received = received;
    this.sent = sent;
  }

  closed(info: StreamInfo): void {
    if (this.timer) clearInterval(this.timer);
    let ch = this.opened;
    if (!ch) {
      ch = tcpChildren(this.c, info);
      ch.opened?.inc();
    } else if (info.responseFlags !== 0) ch = tcpChildren(this.c, info);
    ch.closed?.inc();
    this.report(ch, info.bytesReceived, info.bytesSent);
  }
}

class TcpStatsFilter implements NetworkFilter {
  private readonly c: StatsConfig;

  constructor(c: StatsConfig) {
    this.c = c;
  }

  onConnection(conn: DownstreamConnection): boolean {
    (conn.observers ??= []).push(new TcpConnectionStats(this.c));
    return true;
  }
}

export const tcpStatsFilterFactory: NetworkFilterFactory = {
  name: STATS_FILTER,
  typeUrls: [],
  terminal: false,
  compile(r: Reader, ctx) {
    const t = attachTelemetry(ctx.proxy);
    return new TcpStatsFilter(compileStatsConfig(r, ctx.direction, t));
  },
};

// envoy.filters.http.grpc_web: bridges gRPC-Web clients (browsers) to gRPC servers, as Envoy's filter.
// A request with a gRPC-Web content type goes upstream as application/grpc with te: trailers (its
// base64 body decoded for grpc-web-text); the response goes back as application/grpc-web+proto (or
// -text+proto when the client's Accept asks for text, its frames base64-encoded), the upstream's
// trailers sent as a last body frame flagged 0x80. A response that is not gRPC (an upstream failure,
// a local reply) keeps its HTTP status and gets grpc-status mapped from it and grpc-message from its
// body (at most 16 KiB, percent-encoded), with an empty body. Other requests pass untouched.
// Stats (Envoy's gRPC context, protocol grpc-web), for a request path /<service>/<method> routed to
// a cluster: cluster.<name>.grpc-web.<service>.<method>.<grpc-status>|success|failure|total.
import type { Stats } from '../../stats/stats.ts';
import { grpcStatusFor, isGrpcContentType } from '../../http/local-reply.ts';
import { firstHeaderValue } from '../../http/first-header-value.ts';
import { FilterStatus, type BodyCodec, type BodyEnd, type HttpFilter, type HttpFilterFactory, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { RewriteStream } from '../rewrite-stream.ts';
import { registerHttpFilter } from '../registry.ts';
import { Base64Decoder, FrameSplitter, base64Frames, percentEncode, trailersFrame } from './grpc-web-codec.ts';

export const GRPC_WEB_FILTER_NAME = 'envoy.filters.http.grpc_web';
export const GRPC_WEB_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb';

const GRPC_WEB = 'application/grpc-web';
const GRPC_WEB_PROTO = 'application/grpc-web+proto';
const GRPC_WEB_TEXT = 'application/grpc-web-text';
const GRPC_WEB_TEXT_PROTO = 'application/grpc-web-text+proto';
/** Envoy's limit on a non-gRPC response body kept for grpc-message. */
const MAX_MESSAGE_BYTES = 16384;
const EMPTY = Buffer.alloc(0);

export interface GrpcWebConfig {
  readonly stats: Stats;
}

const Mode = {
  /** Not a gRPC-Web request: the filter does nothing. */
  Off: 0,
  /** Binary response: frames pass as they are, the trailers become the last frame. */
  Binary: 1,
  /** grpc-web-text response: each frame base64-encoded. */
  Text: 2,
  /** The upstream answered without gRPC: its body becomes grpc-message. */
  NotGrpc: 3,
} as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** A grpc-web-text request body, base64-decoded as it streams; invalid base64 is answered with 400. */
class TextRequestBody implements BodyCodec {
  private readonly cb: StreamCallbacks;
  private readonly decoder = new Base64Decoder();

  constructor(cb: StreamCallbacks) {
    this.cb = cb;
  }

  stream(): RewriteStream {
    return new RewriteStream(this);
  }

  whole(body: Buffer): Buffer {
    return Buffer.concat([this.rewrite(body), this.finish()]);
  }

  rewrite(chunk: Buffer): Buffer {
    const out = this.decoder.decode(chunk);
    if (out !== undefined) return out;
    this.cb.sendLocalReply({ status: 400, body: 'Bad gRPC-web request, invalid base64 data.', details: 'grpc_base_64_decode_failed' });
    return EMPTY;
  }

  finish(): Buffer {
    // Padding is mandatory: a body that does not end on a whole group is invalid.
    if (this.decoder.pending > 0) this.cb.sendLocalReply({ status: 400, body: 'Bad gRPC-web request, invalid base64 data.', details: 'grpc_base_64_decode_failed_bad_size' });
    return EMPTY;
  }
}

/** The filter is its response's codec: gRPC frames to gRPC-Web (trailers as the last frame), or a non-gRPC answer to grpc-status. */
class GrpcWebFilter implements HttpFilter, BodyCodec {
  private readonly c: GrpcWebConfig;
  private readonly cb: StreamCallbacks;
  private mode: Mode = Mode.Off;
  private textResponse = false;
  /** `cluster.<name>.grpc-web.<service>.<method>.`, when the request is tracked. */
  private statPrefix: string | undefined;
  private splitter: FrameSplitter | undefined;
  private head: ResponseHead | undefined;
  private message: Buffer[] | undefined;
  private messageBytes = 0;
  /** A non-gRPC response: its head waits for the body, which becomes grpc-message. */
  holdHead = false;

  constructor(c: GrpcWebConfig, cb: StreamCallbacks) {
    this.c = c;
    this.cb = cb;
  }

  decodeHeaders(head: RequestHead): FilterStatus {
    const h = head.headers;
    const ct = h['content-type'];
    if (ct !== GRPC_WEB && ct !== GRPC_WEB_PROTO && ct !== GRPC_WEB_TEXT && ct !== GRPC_WEB_TEXT_PROTO) return FilterStatus.Continue;
    this.mode = Mode.Binary;
    // From here on the request is gRPC: istio.stats counts it as such (request_protocol "grpc"), as
    // Istio's stats filter does, which sees the content type this filter rewrites.
    this.cb.streamInfo.isGrpc = true;
    // An HTTP/1.1 length is not the length of the HTTP/2 body (nor of a decoded text body).
    delete h['content-length'];
    this.trackStats(head.path);
    if (ct === GRPC_WEB_TEXT || ct === GRPC_WEB_TEXT_PROTO) this.cb.recodeRequestBody(new TextRequestBody(this.cb));
    h['content-type'] = 'application/grpc';
    const accept = firstHeaderValue(h.accept);
    this.textResponse = accept === GRPC_WEB_TEXT || accept === GRPC_WEB_TEXT_PROTO;
    h.te = 'trailers';
    if (h['grpc-accept-encoding'] === undefined) h['grpc-accept-encoding'] = 'identity';
    return FilterStatus.Continue;
  }

  /** Envoy's setupStatTracking: the route's cluster and the path's service and method, as sent. */
  private trackStats(path: string): void {
    this.cb.matchedRoute();
    const cluster = this.cb.streamInfo.upstreamCluster;
    if (!cluster) return;
    const q = path.indexOf('?');
    const parts = (q >= 0 ? path.slice(0, q) : path).split('/').filter((p) => p.length > 0);
    if (parts.length !== 2) return;
    this.statPrefix = `cluster.${cluster}.grpc-web.${parts[0]}.${parts[1]}.`;
  }

  /** A grpc-status of the response (head or trailers): the stream's gRPC status, and the stats. */
  private chargeStat(grpcStatus: string | string[] | undefined): void {
    const status = firstHeaderValue(grpcStatus);
    if (status === undefined) return;
    this.cb.streamInfo.grpcStatus = Number(status);
    const p = this.statPrefix;
    if (p === undefined) return;
    const s = this.c.stats;
    s.counter(p + status).value++;
    s.counter(p + (status === '0' ? 'success' : 'failure')).value++;
    s.counter(p + 'total').value++;
  }

  encodeHeaders(head: ResponseHead): void {
    if (this.mode === Mode.Off) return;
    const h = head.headers;
    this.chargeStat(h['grpc-status']);
    // A gRPC response: 200 with a gRPC content type, or trailers-only (grpc-status in the head);
    // a proto-encoded gRPC-Web response passes as it is.
    const grpc = h['grpc-status'] !== undefined || (head.status === 200 && (isGrpcContentType(h['content-type']) || isProtoGrpcWeb(h['content-type'])));
    delete h['content-length'];
    h['content-type'] = this.textResponse ? GRPC_WEB_TEXT_PROTO : GRPC_WEB_PROTO;
    if (!grpc) {
      this.mode = Mode.NotGrpc;
      this.head = head;
      this.message = [];
      this.holdHead = true;
      this.cb.recodeResponseBody(this);
      return;
    }
    if (this.textResponse) {
      this.mode = Mode.Text;
      this.splitter = new FrameSplitter();
    }
    this.cb.recodeResponseBody(this);
  }

  stream(): RewriteStream {
    return new RewriteStream(this);
  }

  whole(body: Buffer): Buffer {
    const a = body.length ? this.rewrite(body) : EMPTY;
    const b = this.end({ trailers: undefined });
    return a.length === 0 ? b : b.length === 0 ? a : Buffer.concat([a, b]);
  }

  rewrite(chunk: Buffer): Buffer {
    switch (this.mode) {
      case Mode.Text:
        return base64Frames(this.splitter!.push(chunk));
      case Mode.NotGrpc:
        if (this.messageBytes < MAX_MESSAGE_BYTES) {
          this.message!.push(chunk);
          this.messageBytes += chunk.length;
        }
        return EMPTY;
      default:
        return chunk;
    }
  }

  end(e: BodyEnd): Buffer {
    const trailers = e.trailers;
    if (this.mode === Mode.NotGrpc) {
      const h = this.head!.headers;
      const body = Buffer.concat(this.message!);
      h['grpc-message'] = percentEncode(body.length > MAX_MESSAGE_BYTES ? body.subarray(0, MAX_MESSAGE_BYTES) : body);
      const gs = grpcStatusFor(this.head!.status);
      h['grpc-status'] = String(gs);
      this.cb.streamInfo.grpcStatus = gs;
      h['content-length'] = '0';
      return EMPTY;
    }
    if (trailers === undefined) return EMPTY;
    let any = false;
    for (const _k in trailers) {
      any = true;
      break;
    }
    if (!any) return EMPTY;
    this.chargeStat(trailers['grpc-status']);
    const frame = trailersFrame(trailers);
    for (const k of Object.keys(trailers)) delete trailers[k];
    return this.mode === Mode.Text ? Buffer.from(frame.toString('base64'), 'latin1') : frame;
  }
}

/** application/grpc-web or application/grpc-web+proto, parameters ignored, case-insensitive (Envoy's hasProtoEncodedGrpcWebContentType). */
function isProtoGrpcWeb(ct: string | string[] | undefined): boolean {
  if (typeof ct !== 'string') return false;
  const i = ct.indexOf(';');
  const v = (i >= 0 ? ct.slice(0, i) : ct).trimEnd().toLowerCase();
  return v === GRPC_WEB || v === GRPC_WEB_PROTO;
}

export const grpcWebFilterFactory: HttpFilterFactory<GrpcWebConfig> = {
  name: GRPC_WEB_FILTER_NAME,
  typeUrls: [GRPC_WEB_TYPE],
  compile(r, ctx) {
    r.done();
    return { stats: ctx.stats };
  },
  create: (c, cb) => new GrpcWebFilter(c, cb),
};

export function setup(): void {
  registerHttpFilter(grpcWebFilterFactory);
}

// One stream through envoy.filters.http.wasm: the plugin's HTTP context. Request and response
// headers go to proxy_on_request_headers / proxy_on_response_headers; bodies and trailers through
// proxy_on_*_body / proxy_on_*_trailers (wasm-body.ts, a codec per body, only when the module has
// the callbacks or paused the response head). A pause on request headers holds the request until
// proxy_continue_stream(Request) (e.g. from an HTTP call's callback); a pause on response headers
// holds the head and the body until proxy_continue_stream(Response) or a body callback that
// continues. proxy_send_local_response on the response side replaces the
// response while its head is held (Envoy's sendDirectLocalReply), else resets the stream. When the
// VM fails (a trap), fail_open lets the stream go on without the plugin, else it is answered 503.
import { FilterStatus, type HttpFilter, type LocalReply, type RequestHead, type ResponseHead, type StreamCallbacks, type HeaderMap } from '../filter.ts';
import { Action, BufferType, MapType, StreamType, WasmResult } from './wasm-abi.ts';
import type { WasmFilterConfig } from './wasm-config.ts';
import { MapAccess, RequestHeadAccess, ResponseHeadAccess, type HeaderAccess } from './wasm-headers.ts';
import { PluginBody, type BodyOwner } from './wasm-body.ts';
import { connectionFilterState } from './wasm-state.ts';
import { LifeSpan } from './wasm-foreign-args.ts';
import type { ExpressionInput } from './wasm-foreign.ts';
import { StreamContext } from './wasm-stream-context.ts';

const EMPTY = Buffer.alloc(0);
const FAIL_CLOSED: LocalReply = { status: 503, details: 'wasm_fail_stream' };

export class WasmStream extends StreamContext implements HttpFilter, BodyOwner {
  readonly network = false;
  private readonly c: WasmFilterConfig;
  private readonly cb: StreamCallbacks;
  request: RequestHead | undefined;
  private reqAccess: RequestHeadAccess | undefined;
  response: ResponseHead | undefined;
  private resAccess: ResponseHeadAccess | undefined;
  private reqTrailerAccess: MapAccess | undefined;
  private resTrailerAccess: MapAccess | undefined;
  private reqBody: PluginBody | undefined;
  private resBody: PluginBody | undefined;
  /** The body data the running body callback sees (and may replace). */
  private bodyNow: Buffer | undefined;
  private bodyIsRequest = true;
  /** The running body callback is the body's last (end_of_stream). */
  private bodyEnds = false;

  /** proxy_continue_stream(Request) / (Response) was called and not yet acted on. */
  private continueAsked = false;
  private continueResponseAsked = false;
  /** The request is paused on its headers. */
  private paused = false;
  private reply: LocalReply | undefined;
  /** proxy_close_stream was called: the stream is reset after the callback, as Envoy. */
  private resetAsked = false;
  /** The plugin no longer runs for this stream: it failed, or answered it. */
  private off = false;

  constructor(c: WasmFilterConfig, cb: StreamCallbacks) {
    super(c.plugin!);
    this.c = c;
    this.cb = cb;
  }

  get info() {
    return this.cb.streamInfo;
  }

  get responseTrailers(): HeaderMap | undefined {
    return this.resTrailerAccess?.m;
  }

  get connection() {
    return this.cb.connection;
  }

  /** Creates the HTTP context (once); false when the VM failed. */
  private context(): boolean {
    if (this.id) return true;
    const vm = this.plugin.vm;
    if (vm.failed) return false;
    this.id = vm.newContextId();
    vm.register(this);
    return vm.call(this, 'proxy_on_context_create', this.id, this.plugin.id) !== undefined;
  }

  // === request ===

  decodeHeaders(head: RequestHead, endStream: boolean): FilterStatus {
    if (!this.context()) return this.failRequest();
    this.request = head;
    const h = (this.reqAccess = new RequestHeadAccess(head));
    const a = this.invoke('proxy_on_request_headers', h.count(), endStream ? 1 : 0);
    if (a === undefined) return this.failRequest();
    if (this.resetAsked) return this.reset();
    if (this.reply) return this.sendReply();
    const vm = this.plugin.vm;
    if (!endStream && (vm.has('proxy_on_request_body') || vm.has('proxy_on_request_trailers'))) this.cb.recodeRequestBody((this.reqBody = new PluginBody(this, true, false)));
    if (a !== Action.Continue && !this.continueAsked) {
      this.paused = true;
      return FilterStatus.StopIteration;
    }
    this.continueAsked = false;
    this.requestHeadersDone();
    return FilterStatus.Continue;
  }

  private requestHeadersDone(): void {
    if (this.reqAccess?.changed) this.cb.clearRouteCache();
  }

  /** The VM failed while the request was decoded: fail_open goes on without the plugin, else 503. */
  private failRequest(): FilterStatus {
    this.off = true;
    if (this.c.failOpen) return FilterStatus.Continue;
    this.cb.sendLocalReply(FAIL_CLOSED);
    return FilterStatus.StopIteration;
  }

  private sendReply(): FilterStatus {
    const r = this.reply!;
    this.reply = undefined;
    this.off = true;
    this.paused = false;
    this.cb.sendLocalReply(r);
    return FilterStatus.StopIteration;
  }

  /** After a callback the stream did not run (an HTTP call's answer, another context's): reply, resume or fail. */
  protected settle(): void {
    try {
      this.settleNow();
    } catch (e) {
      // Called from a microtask or a call's answer: an error here must not escape the proxy.
      this.plugin.vm.o.log.error(`wasm plugin ${this.plugin.name}: resuming a stream failed: ${(e as Error).message}`);
    }
  }

  private settleNow(): void {
    if (this.resetAsked) {
      this.reset();
      return;
    }
    if (this.reply) {
      this.sendReply();
      return;
    }
    if (this.off) return;
    if (this.plugin.vm.failed) {
      this.off = true;
      const waits = this.paused || this.reqBody?.waits || this.resBody?.waits;
      if (!waits) return;
      if (this.c.failOpen) {
        this.resumeRequest();
        this.resBody?.goOn();
      } else if (this.response) this.respondOnResponse(FAIL_CLOSED);
      else this.cb.sendLocalReply(FAIL_CLOSED);
      return;
    }
    if (this.continueAsked) {
      this.continueAsked = false;
      this.resumeRequest();
    }
    if (this.continueResponseAsked) {
      this.continueResponseAsked = false;
      this.resBody?.goOn();
    }
  }

  /** The request goes on: its paused headers, then what its body held back. */
  private resumeRequest(): void {
    if (this.paused) {
      this.paused = false;
      this.requestHeadersDone();
      this.cb.continueDecoding();
    }
    this.reqBody?.goOn();
  }

  /**
   * A local reply (or failing closed) once the response began: the response body stops here and
   * the reply goes out after this callback, replacing the response if its head is still held.
   */
  private respondOnResponse(reply: LocalReply): void {
    this.reply = reply;
    this.resBody?.drop();
    queueMicrotask(() => this.settle());
  }

  /** Resets the stream (proxy_close_stream), with response code details wasm_close_stream unless set. */
  private reset(): FilterStatus {
    this.resetAsked = false;
    this.off = true;
    this.paused = false;
    this.reqBody?.drop();
    this.resBody?.drop();
    const info = this.cb.streamInfo;
    info.responseCodeDetails ??= 'wasm_close_stream';
    this.cb.resetStream();
    return FilterStatus.StopIteration;
  }

  /** After a body or trailers callback (or response headers) asked for a reset: the body stops here, the reset follows the callback. */
  private resetLater(): void {
    this.reqBody?.drop();
    this.resBody?.drop();
    queueMicrotask(() => this.settle());
  }

  /** Whether the running callback continues the stream: Continue, or proxy_continue_stream during it. */
  private continues(request: boolean, a: number): boolean {
    const asked = request ? this.continueAsked : this.continueResponseAsked;
    if (request) this.continueAsked = false;
    else this.continueResponseAsked = false;
    return a === Action.Continue || asked;
  }

  /** After a body or trailers callback failed (a trap): the stream goes on (fail_open) or fails closed. */
  private failBody(request: boolean): void {
    this.off = true;
    if (this.c.failOpen) return;
    if (request) this.cb.sendLocalReply(FAIL_CLOSED);
    else this.respondOnResponse(FAIL_CLOSED);
  }

  /** A reply asked for in a body or trailers callback. */
  private replyFromBody(request: boolean): void {
    if (request) this.sendReply();
    else this.respondOnResponse(this.reply!);
  }

  /** A body chunk through the plugin: what to send on, undefined to buffer it (the plugin paused). */
  body(request: boolean, buf: Buffer, end: boolean): Buffer | undefined {
    if (this.off || this.plugin.vm.failed) return buf;
    this.bodyNow = buf;
    this.bodyIsRequest = request;
    this.bodyEnds = end;
    const a = this.invoke(request ? 'proxy_on_request_body' : 'proxy_on_response_body', buf.length, end ? 1 : 0);
    const out = this.bodyNow;
    this.bodyNow = undefined;
    this.bodyEnds = false;
    if (a === undefined) {
      this.failBody(request);
      return buf;
    }
    if (this.resetAsked) {
      this.resetLater();
      return EMPTY;
    }
    if (this.reply) {
      this.replyFromBody(request);
      return EMPTY;
    }
    return this.continues(request, a) ? out : undefined;
  }

  /** Trailers through the plugin at the body's end: false when it paused. */
  trailers(request: boolean, trailers: HeaderMap): boolean {
    const access = new MapAccess(trailers);
    if (request) this.reqTrailerAccess = access;
    else this.resTrailerAccess = access;
    if (this.off || this.plugin.vm.failed) return true;
    const a = this.invoke(request ? 'proxy_on_request_trailers' : 'proxy_on_response_trailers', access.count());
    if (a === undefined) {
      this.failBody(request);
      return true;
    }
    if (this.resetAsked) {
      this.resetLater();
      return true;
    }
    if (this.reply) {
      this.replyFromBody(request);
      return true;
    }
    return this.continues(request, a);
  }

  requestTrailers(): HeaderMap | undefined {
    return this.cb.requestTrailers();
  }

  /** An edit of the request trailers from the last request body call, the request having none: Envoy's addDecodedTrailers. */
  private addRequestTrailers(): MapAccess | undefined {
    const m = this.cb.addRequestTrailers();
    if (m) return (this.reqTrailerAccess = new MapAccess(m));
    this.plugin.vm.warnOnce('add-request-trailers', 'request trailers added from proxy_on_request_body go upstream only on a request that could carry trailers (HTTP/2 with a body and not gRPC, or chunked HTTP/1.1 with the connection manager\'s enable_trailers); here the edit answers BadArgument');
    return undefined;
  }

  releaseHead(): void {
    this.cb.releaseResponseHead();
  }

  bufferLimit(): number {
    return this.cb.bufferLimit();
  }

  /** As Envoy's buffer overflow: a request gets 413; a response 500 while its head is held, else the stream is reset. */
  overflow(request: boolean): void {
    this.off = true;
    if (request) this.cb.sendLocalReply({ status: 413, body: 'Payload Too Large', details: 'request_payload_too_large' });
    else this.respondOnResponse({ status: 500, body: 'Internal Server Error', details: 'response_payload_too_large' });
  }

  // === response ===

  encodeHeaders(head: ResponseHead): void {
    if (this.off) return;
    if (!this.context()) return this.failResponse();
    this.response = head;
    const h = (this.resAccess = new ResponseHeadAccess(head));
    const a = this.invoke('proxy_on_response_headers', h.count(), 0);
    if (a === undefined) return this.failResponse();
    const vm = this.plugin.vm;
    if (this.resetAsked) {
      this.cb.recodeResponseBody((this.resBody = new PluginBody(this, false, true)));
      this.resetLater();
      return;
    }
    if (this.reply) {
      // The head is held (nothing of the upstream response goes out) until the reply replaces it.
      this.cb.recodeResponseBody((this.resBody = new PluginBody(this, false, true)));
      this.respondOnResponse(this.reply);
      return;
    }
    const wait = !this.continues(false, a);
    if (wait || vm.has('proxy_on_response_body') || vm.has('proxy_on_response_trailers')) this.cb.recodeResponseBody((this.resBody = new PluginBody(this, false, wait)));
  }

  /** The VM failed on response headers: fail_open sends the response as it is; else a 503 replaces it. */
  private failResponse(): void {
    this.off = true;
    if (this.c.failOpen) return;
    this.cb.recodeResponseBody((this.resBody = new PluginBody(this, false, true)));
    this.respondOnResponse(FAIL_CLOSED);
  }

  onDestroy(): void {
    if (!this.id) return;
    const vm = this.plugin.vm;
    this.off = true;
    this.paused = false;
    this.invoke('proxy_on_done');
    this.invoke('proxy_on_log');
    this.invoke('proxy_on_delete');
    vm.unregister(this);
  }

  // === host context ===

  headers(type: number, edit = false): HeaderAccess | undefined {
    if (type === MapType.HttpRequestHeaders) return this.reqAccess;
    if (type === MapType.HttpRequestTrailers) return this.reqTrailerAccess ?? (edit && this.bodyEnds && this.bodyIsRequest && this.bodyNow ? this.addRequestTrailers() : undefined);
    if (type === MapType.HttpResponseHeaders) return this.resAccess;
    if (type === MapType.HttpResponseTrailers) {
      if (!this.resTrailerAccess && edit && this.bodyEnds && !this.bodyIsRequest) {
        this.plugin.vm.warnOnce('add-response-trailers', 'rig proxy cannot add trailers to a response that came without (Envoy\'s addEncodedTrailers from proxy_on_response_body): the edit answers BadArgument');
      }
      return this.resTrailerAccess;
    }
    return undefined;
  }

  buffer(type: number): Buffer | undefined {
    if (type === BufferType.HttpRequestBody) return this.bodyIsRequest ? this.bodyNow : undefined;
    if (type === BufferType.HttpResponseBody) return this.bodyIsRequest ? undefined : this.bodyNow;
    return this.plugin.buffer(type);
  }

  setBuffer(type: number, value: Buffer): number {
    if (this.bodyNow === undefined || (type === BufferType.HttpRequestBody) !== this.bodyIsRequest || (type !== BufferType.HttpRequestBody && type !== BufferType.HttpResponseBody)) return WasmResult.NotFound;
    this.bodyNow = value;
    return WasmResult.Ok;
  }

  /** The request's filter state; the connection's for DownstreamConnection. */
  filterState(span: number): Record<string, unknown> {
    if (span === LifeSpan.DownstreamConnection) return connectionFilterState(this.cb.connection, true)!;
    return (this.cb.streamInfo.filterState ??= {});
  }

  sendLocalResponse(reply: LocalReply): number {
    // Once the stream is answered (or the plugin off it), another reply has no effect; Ok as in Envoy.
    if (this.off) return WasmResult.Ok;
    this.reply = reply;
    if (!this.inCallback) queueMicrotask(() => this.settle());
    return WasmResult.Ok;
  }

  continueStream(type: number): number {
    if (type !== StreamType.Request && type !== StreamType.Response) return WasmResult.BadArgument;
    if (type === StreamType.Response) this.continueResponseAsked = true;
    else this.continueAsked = true;
    if (!this.inCallback) queueMicrotask(() => this.settle());
    return WasmResult.Ok;
  }

  /** As Envoy: the stream is reset once the running callback returns. */
  closeStream(type: number): number {
    if (type !== StreamType.Request && type !== StreamType.Response) return WasmResult.BadArgument;
    if (this.off) return WasmResult.Ok;
    this.resetAsked = true;
    if (!this.inCallback) queueMicrotask(() => this.settle());
    return WasmResult.Ok;
  }

  expressionInput(): ExpressionInput {
    return { info: this.cb.streamInfo, request: this.request, response: this.response };
  }

  clearRouteCache(): void {
    this.cb.clearRouteCache();
  }

  protected callbacksOff(): boolean {
    return this.off;
  }
}

// One stream through envoy.filters.http.wasm: the plugin's HTTP context. Request and response
// headers go to proxy_on_request_headers / proxy_on_response_headers; bodies stream through
// proxy_on_*_body (a codec per body, only when the module has the callback), a paused chunk is
// buffered with the next ones until the plugin continues or the body ends (StopIterationAndBuffer);
// response trailers go to proxy_on_response_trailers at the body's end. A pause on request headers
// holds the stream until proxy_continue_stream (e.g. from an HTTP call's callback). When the VM
// fails (a trap), fail_open lets the stream go on without the plugin, else it is answered 503.
import { FilterStatus, type BodyCodec, type BodyEnd, type HttpFilter, type LocalReply, type RequestHead, type ResponseHead, type StreamCallbacks, type HeaderMap } from '../filter.ts';
import { RewriteStream } from '../rewrite-stream.ts';
import { Action, BufferType, MapType, StreamType, WasmResult } from './wasm-abi.ts';
import type { WasmFilterConfig } from './wasm-config.ts';
import { MapAccess, RequestHeadAccess, ResponseHeadAccess, type HeaderAccess } from './wasm-headers.ts';
import type { WasmPlugin } from './wasm-plugin.ts';
import { pluginProperty, setStreamProperty, streamProperty, type StreamProps } from './wasm-properties.ts';
import type { CallResponse, HostContext } from './wasm-vm.ts';

const EMPTY = Buffer.alloc(0);
const FAIL_CLOSED: LocalReply = { status: 503, details: 'wasm_fail_stream' };

/** A body streamed through the plugin's body callback. */
class BodyThroughPlugin implements BodyCodec {
  private readonly s: WasmStream;
  private readonly request: boolean;
  readonly holdHead: boolean;
  /** Chunks the plugin paused on (StopIterationAndBuffer), handed to it again with the next one. */
  private pending: Buffer | undefined;

  constructor(s: WasmStream, request: boolean, holdHead: boolean) {
    this.s = s;
    this.request = request;
    this.holdHead = holdHead;
  }

  stream(): RewriteStream {
    return new RewriteStream(this);
  }

  rewrite(chunk: Buffer): Buffer {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const out = this.s.body(this.request, buf, false);
    if (out === undefined) {
      this.pending = buf;
      return EMPTY;
    }
    this.pending = undefined;
    return out;
  }

  /** The stream's end: a request body's last call; a response body ends in end() (with its trailers). */
  finish(): Buffer {
    return this.request ? this.last(false) : EMPTY;
  }

  whole(body: Buffer): Buffer {
    this.pending = body;
    return this.last(false);
  }

  end(e: BodyEnd): Buffer {
    return this.last(e.trailers !== undefined, e.trailers);
  }

  /** The body's end: its last call with end_of_stream (skipped when trailers follow and nothing is left), then the trailers. */
  private last(trailersFollow: boolean, trailers?: HeaderMap): Buffer {
    const buf = this.pending ?? EMPTY;
    this.pending = undefined;
    const out = trailersFollow && !buf.length ? buf : (this.s.body(this.request, buf, !trailersFollow) ?? buf);
    if (trailers) this.s.responseTrailersArrived(trailers);
    return out;
  }
}

export class WasmStream implements HttpFilter, HostContext, StreamProps {
  id = 0;
  private readonly c: WasmFilterConfig;
  private readonly plugin: WasmPlugin;
  private readonly cb: StreamCallbacks;
  request: RequestHead | undefined;
  private reqAccess: RequestHeadAccess | undefined;
  response: ResponseHead | undefined;
  private resAccess: ResponseHeadAccess | undefined;
  responseTrailers: HeaderMap | undefined;
  private resTrailerAccess: MapAccess | undefined;
  /** The body data the running body callback sees (and may replace). */
  private bodyNow: Buffer | undefined;
  private bodyIsRequest = true;

  private inCallback = false;
  private continueAsked = false;
  private paused = false;
  private reply: LocalReply | undefined;
  /** The plugin no longer runs for this stream: it failed, or answered it. */
  private off = false;

  constructor(c: WasmFilterConfig, cb: StreamCallbacks) {
    this.c = c;
    this.plugin = c.plugin!;
    this.cb = cb;
  }

  get root(): WasmPlugin {
    return this.plugin;
  }

  get info() {
    return this.cb.streamInfo;
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

  private invoke(fn: string, ...args: number[]): number | undefined {
    this.inCallback = true;
    try {
      return this.plugin.vm.call(this, fn, this.id, ...args);
    } finally {
      this.inCallback = false;
    }
  }

  // === request ===

  decodeHeaders(head: RequestHead, endStream: boolean): FilterStatus {
    if (!this.context()) return this.failRequest();
    this.request = head;
    const h = (this.reqAccess = new RequestHeadAccess(head));
    const a = this.invoke('proxy_on_request_headers', h.count(), endStream ? 1 : 0);
    if (a === undefined) return this.failRequest();
    if (this.reply) return this.sendReply();
    if (!endStream && this.plugin.vm.has('proxy_on_request_body')) this.cb.recodeRequestBody(new BodyThroughPlugin(this, true, false));
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
  private settle(): void {
    try {
      this.settleNow();
    } catch (e) {
      // Called from a microtask or a call's answer: an error here must not escape the proxy.
      this.plugin.vm.o.log.error(`wasm plugin ${this.plugin.name}: resuming a stream failed: ${(e as Error).message}`);
    }
  }

  private settleNow(): void {
    if (this.off) return;
    if (this.plugin.vm.failed) {
      this.off = true;
      if (!this.paused) return;
      this.paused = false;
      if (this.c.failOpen) this.cb.continueDecoding();
      else this.cb.sendLocalReply(FAIL_CLOSED);
      return;
    }
    if (this.reply) {
      this.sendReply();
      return;
    }
    if (this.paused && this.continueAsked) {
      this.paused = false;
      this.continueAsked = false;
      this.requestHeadersDone();
      this.cb.continueDecoding();
    }
  }

  /** A body chunk through the plugin: what to send on, undefined to buffer it (the plugin paused). */
  body(request: boolean, buf: Buffer, end: boolean): Buffer | undefined {
    if (this.off || this.plugin.vm.failed) return buf;
    this.bodyNow = buf;
    this.bodyIsRequest = request;
    const a = this.invoke(request ? 'proxy_on_request_body' : 'proxy_on_response_body', buf.length, end ? 1 : 0);
    const out = this.bodyNow;
    this.bodyNow = undefined;
    if (a === undefined) {
      this.off = true;
      if (!this.c.failOpen) this.cb.sendLocalReply(FAIL_CLOSED);
      return buf;
    }
    if (this.reply) {
      this.sendReply();
      return EMPTY;
    }
    return a === Action.Continue || end ? out : undefined;
  }

  // === response ===

  encodeHeaders(head: ResponseHead): void {
    if (this.off) return;
    if (!this.context()) return this.failResponse(head);
    this.response = head;
    const h = (this.resAccess = new ResponseHeadAccess(head));
    const a = this.invoke('proxy_on_response_headers', h.count(), 0);
    if (a === undefined) return this.failResponse(head);
    if (this.reply) {
      this.plugin.vm.o.log.warn(`wasm plugin ${this.plugin.name}: a local response from proxy_on_response_headers is not supported in rig proxy; the upstream response goes on`);
      this.reply = undefined;
    }
    const vm = this.plugin.vm;
    if (vm.has('proxy_on_response_body') || vm.has('proxy_on_response_trailers')) this.cb.recodeResponseBody(new BodyThroughPlugin(this, false, a !== Action.Continue));
  }

  /** The VM failed on the response: fail_open sends it as it is; else it becomes a 503 without body (rig proxy cannot reset a stream from a filter). */
  private failResponse(head: ResponseHead): void {
    this.off = true;
    if (this.c.failOpen) return;
    head.status = 503;
    for (const k of Object.keys(head.headers)) delete head.headers[k];
    head.headers['content-length'] = '0';
    this.cb.streamInfo.responseCodeDetails = 'wasm_fail_stream';
    this.cb.recodeResponseBody({ stream: () => new RewriteStream({ rewrite: () => EMPTY }), whole: () => EMPTY, end: () => EMPTY });
  }

  responseTrailersArrived(trailers: HeaderMap): void {
    this.responseTrailers = trailers;
    this.resTrailerAccess = new MapAccess(trailers);
    if (this.off || !this.plugin.vm.has('proxy_on_response_trailers')) return;
    if (this.invoke('proxy_on_response_trailers', this.resTrailerAccess.count()) === undefined) this.off = true;
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

  headers(type: number): HeaderAccess | undefined {
    if (type === MapType.HttpRequestHeaders) return this.reqAccess;
    if (type === MapType.HttpResponseHeaders) return this.resAccess;
    if (type === MapType.HttpResponseTrailers) return this.resTrailerAccess;
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

  property(path: readonly string[]): Buffer | undefined {
    return pluginProperty(this.plugin, path) ?? streamProperty(this, path);
  }

  setProperty(path: readonly string[], value: Buffer): number {
    setStreamProperty(this.cb.streamInfo, path, value);
    return WasmResult.Ok;
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
    // Responses never wait in rig proxy (encoding does not stop): continuing one is a no-op.
    if (type === StreamType.Response) return WasmResult.Ok;
    this.continueAsked = true;
    if (!this.inCallback) queueMicrotask(() => this.settle());
    return WasmResult.Ok;
  }

  /** Envoy resets the stream; rig proxy's filters cannot, so the stream is answered 503 (or reset once its response started). */
  closeStream(type: number): number {
    if (type !== StreamType.Request && type !== StreamType.Response) return WasmResult.BadArgument;
    return this.sendLocalResponse({ status: 503, details: 'wasm_close_stream' });
  }

  setTickPeriod(ms: number): number {
    return this.plugin.setTickPeriod(ms);
  }

  onHttpCallResponse(token: number, res: CallResponse | undefined): void {
    if (this.off) return;
    this.inCallback = true;
    try {
      this.plugin.vm.callHttpResponse(this, token, res);
    } finally {
      this.inCallback = false;
    }
    this.settle();
  }
}

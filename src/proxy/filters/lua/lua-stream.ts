// One stream through envoy.filters.http.lua: envoy_on_request runs as a coroutine from decodeHeaders,
// envoy_on_response from encodeHeaders. The coroutine yields to wait: for the request body (the filter
// answers StopIterationAndBuffer and resumes it in decodeData), for an httpCall() answer
// (StopIteration, then continueDecoding), for the response body or trailers (the response head is
// held and the body buffered until its end). A script error is logged and counted (lua.errors) and
// the stream goes on without the script, as in Envoy.
import { requestThroughCluster, type ClusterRequest } from '../../upstream/cluster-request.ts';
import { FilterStatus, type BodyCodec, type BodyEnd, type HeaderMap, type HttpFilter, type LocalReply, type RequestHead, type ResponseHead, type StreamCallbacks } from '../filter.ts';
import { RewriteStream } from '../rewrite-stream.ts';
import { enterStream, leaveStream } from './lua-host.ts';
import { YIELD_BODY, YIELD_CALL, YIELD_RESPOND } from './lua-prelude.ts';
import type { LuaScript } from './lua-script.ts';
import { LUA_OK, LUA_YIELD, type LuaThread } from './lua-vm.ts';
import type { LuaFilterConfig, LuaPerRoute } from './lua-config.ts';

const EMPTY = Buffer.alloc(0);
/** The direction numbers of the prelude's handles: 0 request, 1 response. */
const REQUEST = 0;

/** What a coroutine run came to. */
const Outcome = { Done: 0, WaitBody: 1, WaitCall: 2, Replied: 3, Failed: 4 } as const;
type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** The request body a script set (body():setBytes()), in place of the body it read whole. */
class ReplacedBody implements BodyCodec {
  private readonly body: Buffer;
  constructor(body: Buffer) {
    this.body = body;
  }
  stream(): RewriteStream {
    return new RewriteStream(this);
  }
  whole(): Buffer {
    return this.body;
  }
  rewrite(): Buffer {
    return EMPTY;
  }
  finish(): Buffer {
    return this.body;
  }
}

/** The filter is its response's codec when envoy_on_response waits for the body: held, with the head, until its end. */
export class LuaStreamFilter implements HttpFilter, BodyCodec {
  readonly holdHead = true;
  readonly config: LuaFilterConfig;
  readonly cb: StreamCallbacks;
  private script: LuaScript | null | undefined;
  private thread: LuaThread | undefined;

  reqHead: RequestHead | undefined;
  private reqEnd = true;
  private reqBody: Buffer | undefined;
  private reqBodyOut: Buffer | undefined;
  requestHeadersChanged = false;

  resHead: ResponseHead | undefined;
  private resEnd = true;
  private resChunks: Buffer[] | undefined;
  private resBody: Buffer | undefined;
  private resBodyOut: Buffer | undefined;
  resTrailers: HeaderMap | undefined;

  reply: LocalReply | undefined;
  private replied = false;
  callResult: { headers: Record<string, string>; body: Buffer } | undefined;
  private callAbort: AbortController | undefined;

  constructor(config: LuaFilterConfig, cb: StreamCallbacks) {
    this.config = config;
    this.cb = cb;
  }

  /** The script for this stream: the route's (LuaPerRoute: disabled, a named source_codes entry, its own source), else the default. */
  private pick(): LuaScript | null {
    if (this.script !== undefined) return this.script;
    const c = this.config;
    const p = this.cb.perRouteConfig<LuaPerRoute>(c.name);
    let s: LuaScript | null = c.defaultScript ?? null;
    if (p) s = p.kind === 'disabled' ? null : p.kind === 'script' ? p.script : (c.named.get(p.name) ?? null);
    return (this.script = s);
  }

  // === request ===

  decodeHeaders(head: RequestHead, endStream: boolean): FilterStatus {
    const s = this.pick();
    if (!s || s.onRequest === undefined) return FilterStatus.Continue;
    this.reqHead = head;
    this.reqEnd = endStream;
    this.thread = s.state.startThread(s.onRequest, s.requestHandle);
    const o = this.run();
    if (o === Outcome.WaitBody) return FilterStatus.StopIterationAndBuffer;
    return this.requestOutcome(o);
  }

  decodeData(body: Buffer): FilterStatus {
    this.reqBody = body;
    return this.requestOutcome(this.run());
  }

  /** Continue when the script is done (or failed); StopIteration while it waits for a call or replied. */
  private requestOutcome(o: Outcome): FilterStatus {
    if (o === Outcome.WaitBody) {
      // Waiting for the body after the headers went on (body() after an answered httpCall()).
      this.fail('body() after httpCall() in envoy_on_request is not supported in rig proxy');
      o = Outcome.Failed;
    }
    if (o === Outcome.WaitCall || o === Outcome.Replied) return FilterStatus.StopIteration;
    this.finishRequest();
    return FilterStatus.Continue;
  }

  private finishRequest(): void {
    const out = this.reqBodyOut;
    if (out) {
      this.reqBodyOut = undefined;
      this.cb.recodeRequestBody(new ReplacedBody(out));
      if (this.reqHead!.headers['content-length'] !== undefined) this.reqHead!.headers['content-length'] = String(out.length);
    }
    if (this.requestHeadersChanged) this.cb.clearRouteCache();
  }

  // === response ===

  encodeHeaders(head: ResponseHead, endStream: boolean): void {
    if (this.replied) return;
    // A response while envoy_on_request still waits (a local reply: timeout, another filter): that run ends here.
    this.abandon();
    const s = this.pick();
    if (!s || s.onResponse === undefined) return;
    this.resHead = head;
    this.resEnd = endStream;
    this.thread = s.state.startThread(s.onResponse, s.responseHandle);
    if (this.run() === Outcome.WaitBody) {
      this.resChunks = [];
      this.cb.recodeResponseBody(this);
    }
  }

  stream(): RewriteStream {
    return new RewriteStream(this);
  }

  whole(body: Buffer): Buffer {
    if (body.length) this.rewrite(body);
    return this.end({ trailers: undefined });
  }

  rewrite(chunk: Buffer): Buffer {
    this.resChunks!.push(chunk);
    return EMPTY;
  }

  end(e: BodyEnd): Buffer {
    const trailers = e.trailers;
    const chunks = this.resChunks!;
    this.resBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.resChunks = undefined;
    this.resTrailers = trailers;
    this.resEnd = true;
    if (this.thread && this.run() === Outcome.WaitBody) this.fail('the response body was awaited twice');
    const out = this.resBodyOut ?? this.resBody;
    if (this.resBodyOut && this.resHead!.headers['content-length'] !== undefined) this.resHead!.headers['content-length'] = String(out.length);
    return out;
  }

  // === what the host functions use ===

  /** 0: no body; 1: the body is here; 2: it is coming (the script waits for it). */
  bodyState(dir: number): number {
    if (dir === REQUEST) return this.reqBody !== undefined ? 1 : this.reqEnd ? 0 : 2;
    return this.resBody !== undefined ? 1 : this.resEnd ? 0 : 2;
  }

  bodyOf(dir: number): Buffer {
    return (dir === REQUEST ? (this.reqBodyOut ?? this.reqBody) : (this.resBodyOut ?? this.resBody)) ?? EMPTY;
  }

  setBody(dir: number, b: Buffer): void {
    if (dir === REQUEST) this.reqBodyOut = b;
    else this.resBodyOut = b;
  }

  startCall(req: ClusterRequest, asynchronous: boolean): void {
    const clusters = this.config.clusters;
    if (asynchronous) {
      requestThroughCluster(clusters, req).catch((e: Error) => this.config.log?.debug(`script log: asynchronous httpCall to ${req.cluster} failed: ${e.message}`));
      return;
    }
    const abort = (this.callAbort = new AbortController());
    requestThroughCluster(clusters, { ...req, signal: abort.signal }).then(
      (res) => {
        const headers: Record<string, string> = { ':status': String(res.status) };
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
        this.answer(abort, { headers, body: res.body });
      },
      // As Envoy's Lua filter on a failed call: a 503 answer with body "upstream failure".
      () => this.answer(abort, { headers: { ':status': '503' }, body: Buffer.from('upstream failure') }),
    );
  }

  private answer(call: AbortController, result: { headers: Record<string, string>; body: Buffer }): void {
    if (call.signal.aborted || this.callAbort !== call || !this.thread) return;
    this.callAbort = undefined;
    this.callResult = result;
    const o = this.requestOutcome(this.run());
    if (o === FilterStatus.Continue) this.cb.continueDecoding();
  }

  // === the coroutine ===

  private run(): Outcome {
    const t = this.thread!;
    const prev = enterStream(this);
    let rc: number;
    try {
      rc = t.resume();
    } finally {
      leaveStream(prev);
    }
    if (rc === LUA_OK) {
      this.thread = undefined;
      t.release(true);
      return Outcome.Done;
    }
    if (rc !== LUA_YIELD) {
      this.fail(t.error());
      return Outcome.Failed;
    }
    const code = t.yielded();
    if (code === YIELD_BODY) return Outcome.WaitBody;
    if (code === YIELD_CALL) return Outcome.WaitCall;
    if (code === YIELD_RESPOND && this.reply) {
      this.thread = undefined;
      t.release(false);
      this.replied = true;
      this.cb.sendLocalReply(this.reply);
      return Outcome.Replied;
    }
    this.fail('the script yielded outside the stream handle API (coroutine.yield in envoy_on_request/envoy_on_response is not supported)');
    return Outcome.Failed;
  }

  /** A script error: logged and counted; the script is abandoned and the stream goes on. */
  private fail(message: string): void {
    this.config.errors.value++;
    this.config.log?.error(`script log: ${message}`);
    this.thread?.release(false);
    this.thread = undefined;
  }

  onDestroy(): void {
    this.abandon();
  }

  private abandon(): void {
    this.callAbort?.abort();
    this.callAbort = undefined;
    this.thread?.release(false);
    this.thread = undefined;
  }
}

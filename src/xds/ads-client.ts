// A minimal state-of-the-world ADS client over @grpc/grpc-js, for tests, the scale benchmark and
// debugging a control plane by hand. Requests are JSON-shaped DiscoveryRequests; responses come
// back with resources unpacked (or, with `decode: false`, only version/nonce/type and sizes).
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { decodeMessage, encodeMessage } from '../envoy/index.ts';
import type { EnvoyJson } from '../envoy/index.ts';

export interface AdsResponse {
  version_info: string;
  nonce: string;
  type_url: string;
  /** Unpacked resources (empty when decode is false). */
  resources: EnvoyJson[];
  resourceCount: number;
}

export interface AdsClientOptions {
  /** Unpack resources (default true). */
  decode?: boolean;
  /** grpc-js channel options (e.g. one connection per client, flow-control window). */
  channelOptions?: grpc.ChannelOptions;
  /** Keep every response in `responses` for next() (default true; a load generator turns it off). */
  record?: boolean;
  /** Channel credentials (default plaintext), e.g. TLS to the control plane's 15012. */
  credentials?: grpc.ChannelCredentials;
  /** Sent with the stream, e.g. `authorization: Bearer <token>`. */
  metadata?: grpc.Metadata;
}

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/** version_info, nonce and type_url of a DiscoveryResponse and how many resources it holds, without decoding them. */
function readEnvelope(buf: Buffer): AdsResponse {
  const r = protobuf.Reader.create(buf);
  const out: AdsResponse = { version_info: '', nonce: '', type_url: '', resources: [], resourceCount: 0 };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1) out.version_info = r.string();
    else if (field === 4) out.type_url = r.string();
    else if (field === 5) out.nonce = r.string();
    else {
      if (field === 2) out.resourceCount++;
      r.skipType(tag & 7);
    }
  }
  return out;
}

export class AdsClient {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<EnvoyJson, AdsResponse>;
  readonly #node: EnvoyJson;
  readonly #waiters: { pred: (r: AdsResponse) => boolean; resolve: (r: AdsResponse) => void }[] = [];
  readonly responses: AdsResponse[] = [];
  #sentNode = false;
  ended: grpc.StatusObject | undefined;
  readonly #endWaiters: ((s: grpc.StatusObject) => void)[] = [];
  onResponse: ((r: AdsResponse) => void) | undefined;

  constructor(address: string, node: EnvoyJson, opts: AdsClientOptions = {}) {
    const decode = opts.decode ?? true;
    this.#client = new grpc.Client(address, opts.credentials ?? grpc.credentials.createInsecure(), opts.channelOptions);
    const record = opts.record ?? true;
    this.#node = node;
    this.#call = this.#client.makeBidiStreamRequest(
      ADS_PATH,
      (req: EnvoyJson) => Buffer.from(encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', req)),
      (buf: Buffer): AdsResponse => {
        if (decode) {
          const o = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', buf) as EnvoyJson & { resources?: EnvoyJson[] };
          return { version_info: String(o.version_info ?? ''), nonce: String(o.nonce ?? ''), type_url: String(o.type_url ?? ''), resources: o.resources ?? [], resourceCount: o.resources?.length ?? 0 };
        }
        return readEnvelope(buf);
      },
      opts.metadata ?? new grpc.Metadata(),
    );
    this.#call.on('data', (r: AdsResponse) => {
      if (record) this.responses.push(r);
      this.onResponse?.(r);
      for (let i = 0; i < this.#waiters.length; i++) {
        if (this.#waiters[i].pred(r)) {
          this.#waiters[i].resolve(r);
          this.#waiters.splice(i, 1);
          i--;
        }
      }
    });
    this.#call.on('status', (s: grpc.StatusObject) => {
      this.ended = s;
      for (const w of this.#endWaiters.splice(0)) w(s);
    });
    this.#call.on('error', () => {});
  }

  /** Sends a DiscoveryRequest; the node is attached to the first one. */
  send(req: { type_url: string; resource_names?: string[]; version_info?: string; response_nonce?: string; error_detail?: { code: number; message: string } }): void {
    const msg: EnvoyJson = { ...req };
    if (!this.#sentNode) {
      msg.node = this.#node;
      this.#sentNode = true;
    }
    this.#call.write(msg);
  }

  subscribe(typeUrl: string, names?: string[]): void {
    this.send({ type_url: typeUrl, resource_names: names });
  }

  ack(r: AdsResponse, names?: string[]): void {
    this.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
  }

  nack(r: AdsResponse, message: string, lastGoodVersion = '', names?: string[]): void {
    this.send({ type_url: r.type_url, version_info: lastGoodVersion, response_nonce: r.nonce, resource_names: names, error_detail: { code: 3, message } });
  }

  /** Resolves with the next response (already received or future) for `typeUrl` that satisfies `pred`. */
  next(typeUrl: string, pred: (r: AdsResponse) => boolean = () => true, timeoutMs = 5000, after = 0): Promise<AdsResponse> {
    const have = this.responses.slice(after).find((r) => r.type_url === typeUrl && pred(r));
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${typeUrl} response within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ pred: (r) => r.type_url === typeUrl && pred(r), resolve: (r) => (clearTimeout(t), resolve(r)) });
    });
  }

  /** Resolves when the server ends the stream. */
  closed(timeoutMs = 5000): Promise<grpc.StatusObject> {
    if (this.ended) return Promise.resolve(this.ended);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('stream still open')), timeoutMs);
      this.#endWaiters.push((s) => (clearTimeout(t), resolve(s)));
    });
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}


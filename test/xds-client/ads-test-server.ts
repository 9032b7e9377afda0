// A small ADS server for tests: records every DiscoveryRequest per stream and lets the test push
// DiscoveryResponses (Envoy JSON resources, packed as Any) on the current stream.
import * as grpc from '@grpc/grpc-js';
import { decodeMessage, encodeMessage, messageType, packAny, type EnvoyJson } from '../../src/envoy/index.ts';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

export interface RecordedRequest {
  stream: number;
  version_info?: string;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
  node?: EnvoyJson;
}

type Call = grpc.ServerDuplexStream<EnvoyJson, EnvoyJson | Buffer>;

export class AdsTestServer {
  readonly requests: RecordedRequest[] = [];
  readonly metadata: grpc.Metadata[] = [];
  private server: grpc.Server | undefined;
  private call: Call | undefined;
  private streamCount = 0;
  private nonceCounter = 0;
  private waiters: Array<{ pred: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void; from: number }> = [];
  port = 0;

  async start(port = 0, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    const server = new grpc.Server();
    server.addService(
      {
        StreamAggregatedResources: {
          path: ADS_METHOD,
          requestStream: true,
          responseStream: true,
          requestSerialize: (r: EnvoyJson) => Buffer.from(encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', r)),
          requestDeserialize: (b: Buffer) => decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', b),
          responseSerialize: (r: EnvoyJson | Buffer) => (Buffer.isBuffer(r) ? r : Buffer.from(encodeMessage('envoy.service.discovery.v3.DiscoveryResponse', r))),
          responseDeserialize: (b: Buffer) => decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', b),
        },
      } as grpc.ServiceDefinition,
      {
        StreamAggregatedResources: (call: Call) => {
          const stream = ++this.streamCount;
          this.call = call;
          this.metadata.push(call.metadata);
          call.on('data', (req: EnvoyJson) => {
            const rec = { stream, ...req } as RecordedRequest;
            this.requests.push(rec);
            const index = this.requests.length - 1;
            this.waiters = this.waiters.filter((w) => {
              if (index >= w.from && w.pred(rec)) {
                w.resolve(rec);
                return false;
              }
              return true;
            });
          });
          call.on('error', () => {});
          call.on('end', () => call.end());
        },
      },
    );
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    return this.port;
  }

  /** Resolves with the first request (recorded from index `from` on) that matches. */
  waitFor(pred: (r: RecordedRequest) => boolean, from = 0, timeoutMs = 10_000): Promise<RecordedRequest> {
    const found = this.requests.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching DiscoveryRequest within ${timeoutMs} ms; got ${JSON.stringify(this.requests.slice(from), null, 1)}`)), timeoutMs);
      this.waiters.push({ pred, from, resolve: (r) => (clearTimeout(timer), resolve(r)) });
    });
  }

  /** Pushes a response on the current stream; returns its nonce. */
  push(typeUrl: string, version: string, resources: EnvoyJson[]): string {
    if (!this.call) throw new Error('no ADS stream is open');
    const nonce = `n${++this.nonceCounter}`;
    this.call.write({ version_info: version, type_url: typeUrl, nonce, resources: resources.map((r) => ({ '@type': typeUrl, ...r })) });
    return nonce;
  }

  /** Pushes raw Any resources (to send something undecodable). */
  pushRaw(typeUrl: string, version: string, anys: Array<{ type_url: string; value: Uint8Array }>): string {
    if (!this.call) throw new Error('no ADS stream is open');
    const nonce = `n${++this.nonceCounter}`;
    const t = messageType('envoy.service.discovery.v3.DiscoveryResponse');
    this.call.write(Buffer.from(t.encode(t.fromObject({ version_info: version, type_url: typeUrl, nonce, resources: anys })).finish()));
    return nonce;
  }

  /** Ends the current stream with an error status (the client must reconnect). */
  breakStream(): void {
    this.call?.emit('error', Object.assign(new Error('test: stream broken'), { code: grpc.status.UNAVAILABLE }));
    this.call = undefined;
  }

  async stop(): Promise<void> {
    this.server?.forceShutdown();
    this.server = undefined;
    this.call = undefined;
  }
}

export { packAny };

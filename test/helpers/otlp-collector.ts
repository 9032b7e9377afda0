// An OTLP trace receiver for tests, answering as the OpenTelemetry Collector's otlp receiver does:
// POST /v1/traces with an ExportTraceServiceRequest as binary protobuf (application/x-protobuf) or
// OTLP/JSON (application/json: hex trace and span ids, lowerCamelCase names, enums as integers),
// optionally gzip/deflate/zstd encoded; the answer is an empty ExportTraceServiceResponse in the
// request's encoding; another content type gets 415, a body that does not decode 400. Both
// encodings are decoded by protobufjs from the OTLP trace schema below (opentelemetry-proto
// trace/v1, common/v1, resource/v1, collector/trace/v1: message and field numbers of the
// specification), so a span reads the same whichever encoding carried it. Also serves
// decodeTraceRequest to the gRPC collector of otlp-grpc.test.ts.
import type http from 'node:http';
import { createServer } from 'node:http';
import zlib from 'node:zlib';
import protobuf from 'protobufjs';
import { listenLocal } from './listen.ts';

const OTLP_TRACE_SCHEMA = `
syntax = "proto3";
package opentelemetry.proto;
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12; repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15; fixed32 flags = 16;
  message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
  message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5; fixed32 flags = 6; }
}
message Status { string message = 2; int32 code = 3; }
`;

const RequestType = protobuf.parse(OTLP_TRACE_SCHEMA).root.lookupType('opentelemetry.proto.ExportTraceServiceRequest');

export const SPAN_KIND = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export type AttributeValue = string | boolean | number | Buffer | AttributeValue[] | { [key: string]: AttributeValue } | undefined;

/** One span as received, with its resource and scope; ids in lowercase hex ('' when absent). */
export interface OtlpSpan {
  resource: Record<string, AttributeValue>;
  scope: { name: string; version: string };
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Record<string, AttributeValue>;
  status: { code: number; message: string };
  flags: number;
}

interface PbKeyValue {
  key: string;
  value?: PbAnyValue;
}
interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Buffer;
}
interface PbSpan {
  traceId?: Buffer;
  spanId?: Buffer;
  parentSpanId?: Buffer;
  traceState?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: PbKeyValue[];
  status?: { code?: number; message?: string };
  flags?: number;
  links?: { traceId?: unknown; spanId?: unknown }[];
}
interface PbRequest {
  resourceSpans?: { resource?: { attributes?: PbKeyValue[] }; scopeSpans?: { scope?: { name?: string; version?: string }; spans?: PbSpan[] }[] }[];
}

function anyValue(v: PbAnyValue | undefined): AttributeValue {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return Buffer.from(v.bytesValue);
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue) return attributes(v.kvlistValue.values);
  return undefined;
}

function attributes(kvs: PbKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

const hex = (b: Buffer | undefined) => (b ? Buffer.from(b).toString('hex') : '');

/** OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping has base64. */
function idsFromHex(doc: PbRequest): void {
  const toBytes = (o: Record<string, unknown>, k: string) => {
    if (typeof o[k] === 'string') o[k] = Buffer.from(o[k], 'hex');
  };
  for (const rs of doc.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        for (const k of ['traceId', 'spanId', 'parentSpanId']) toBytes(s as Record<string, unknown>, k);
        for (const l of s.links ?? []) for (const k of ['traceId', 'spanId']) toBytes(l as Record<string, unknown>, k);
      }
    }
  }
}

/** Decodes an ExportTraceServiceRequest body (binary protobuf, or OTLP/JSON when `encoding` is 'json'). */
export function decodeTraceRequest(body: Buffer, encoding: 'protobuf' | 'json'): OtlpSpan[] {
  let message: protobuf.Message;
  if (encoding === 'json') {
    const doc = JSON.parse(body.toString('utf8')) as PbRequest;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not an OTLP/JSON ExportTraceServiceRequest: expected an object');
    idsFromHex(doc);
    message = RequestType.fromObject(doc);
  } else message = RequestType.decode(body);
  const req = RequestType.toObject(message, { longs: String }) as PbRequest;
  const out: OtlpSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          resource,
          scope: { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' },
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          traceState: s.traceState ?? '',
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startTimeUnixNano: BigInt(s.startTimeUnixNano ?? 0),
          endTimeUnixNano: BigInt(s.endTimeUnixNano ?? 0),
          attributes: attributes(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          flags: s.flags ?? 0,
        });
      }
    }
  }
  return out;
}

/** One export request as received. */
export interface OtlpRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  encoding: 'protobuf' | 'json';
  spans: OtlpSpan[];
}

const DECOMPRESS: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => zlib.gunzipSync(b),
  deflate: (b) => zlib.inflateSync(b),
  zstd: (b) => zlib.zstdDecompressSync(b),
};

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * Answers one OTLP/HTTP trace export whose body has been read, as the Collector does; returns the
 * request when it decoded (and was answered 200), undefined when it was refused.
 */
export function answerTraceExport(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): OtlpRequest | undefined {
  const type = mediaType(req.headers['content-type']);
  const encoding = type === 'application/x-protobuf' ? 'protobuf' : type === 'application/json' ? 'json' : undefined;
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' }).end();
    return undefined;
  }
  if (!encoding) {
    res.writeHead(415, { 'content-type': 'text/plain' }).end(`415 unsupported media type ${JSON.stringify(req.headers['content-type'] ?? '')}, supported: [application/json, application/x-protobuf]`);
    return undefined;
  }
  let spans: OtlpSpan[];
  try {
    const ce = (req.headers['content-encoding'] ?? '').toLowerCase();
    const raw = ce && ce !== 'identity' ? DECOMPRESS[ce]?.(body) : body;
    if (!raw) throw new Error(`unsupported Content-Encoding ${ce}`);
    spans = decodeTraceRequest(raw, encoding);
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end((e as Error).message);
    return undefined;
  }
  res.writeHead(200, { 'content-type': type }).end(encoding === 'json' ? '{}' : Buffer.alloc(0));
  return { method: req.method, path: req.url ?? '', headers: req.headers, encoding, spans };
}

export interface OtlpCollector {
  port: number;
  /** Every export that decoded, in arrival order. */
  requests: OtlpRequest[];
  /** Every span of those exports. */
  spans(): OtlpSpan[];
  close(): Promise<void>;
}

/** An OTLP/HTTP collector on 127.0.0.1 (port from the OS) taking trace exports at `path`; closed when the test ends. */
export async function startOtlpCollector(t: { after(fn: () => unknown): void }, path = '/v1/traces'): Promise<OtlpCollector> {
  const requests: OtlpRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if ((req.url ?? '').split('?')[0] !== path) return void res.writeHead(404).end();
      const got = answerTraceExport(req, Buffer.concat(chunks), res);
      if (got) requests.push(got);
    });
  });
  const port = await listenLocal(server);
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }));
  t.after(close);
  return { port, requests, spans: () => requests.flatMap((r) => r.spans), close };
}

// Micro-benchmark of the proxy's HTTP/1.1 header handling (not part of the tests):
//   node bench/micro/h1-headers.ts
// The per-request header work of the one-hop case: parse a request head as a browser or an Istio
// sidecar sends it, turn its raw fields into the header map, write the upstream request head,
// and parse the upstream's response head. Prints ns/op (mitata).
import { bench, do_not_optimize, run } from 'mitata';
import { H1Parser, type H1Head } from '../../src/proxy/http/h1/h1-parser.ts';
import { headersOf } from '../../src/proxy/http/h1/h1-request.ts';
import { requestHead } from '../../src/proxy/upstream/h1-pool/h1-request-head.ts';

const LIMITS = { maxHeaderBytes: 60 * 1024, maxHeaders: 100 };
const REQUEST = Buffer.from(
  'GET /productpage?u=normal HTTP/1.1\r\n' +
    'Host: productpage.default.svc.cluster.local:9080\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n' +
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n' +
    'Accept-Encoding: gzip, deflate\r\n' +
    'Accept-Language: en-US,en;q=0.9\r\n' +
    'Cookie: session=eyJ1c2VyIjoiamFzb24ifQ.Zz1a2b\r\n' +
    'x-request-id: 4f6c7f4e-2a4b-4b8e-9a7e-1d2c3b4a5f60\r\n' +
    'x-forwarded-proto: http\r\n' +
    'x-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7\r\n' +
    'x-b3-spanid: e457b5a2e4d86bd1\r\n' +
    'x-b3-sampled: 0\r\n\r\n',
);
const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 03:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n');

let head: H1Head | undefined;
const onHead = { onHead: (h: H1Head) => (head = h), onBody: () => undefined, onEnd: () => undefined };
const requestParser = new H1Parser('request', LIMITS, onHead);
const responseParser = new H1Parser('response', LIMITS, onHead);

bench('parse a request head (12 fields)', () => {
  requestParser.execute(REQUEST);
  do_not_optimize(head);
});

requestParser.execute(REQUEST);
const raw = head!.rawHeaders;
bench('raw fields → header map (headersOf)', () => do_not_optimize(headersOf(raw)));

const headers = headersOf(raw);
bench('write the upstream request head (requestHead)', () => do_not_optimize(requestHead('GET', '/productpage?u=normal', headers, 'productpage:9080', 0, false)));

bench('parse a response head (6 fields)', () => {
  responseParser.execute(RESPONSE);
  do_not_optimize(head);
});

await run();

// ext-authz: the external authorization server of Istio's "External Authorization" task
// (samples/extauthz), an HTTP server on $PORT_HTTP (8000) and an Envoy
// envoy.service.auth.v3.Authorization gRPC server on $PORT_GRPC (9000). A request is allowed when
// it carries `x-ext-authz: allow`; the answer says so in `x-ext-authz-check-result`. Denials are
// 403 "denied by ext_authz for not found header `x-ext-authz: allow` in the request".
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const CHECK_HEADER = 'x-ext-authz';
const ALLOWED_VALUE = 'allow';
const RESULT_HEADER = 'x-ext-authz-check-result';
const DENY_BODY = `denied by ext_authz for not found header \`${CHECK_HEADER}: ${ALLOWED_VALUE}\` in the request`;

const host = process.env.HOST ?? '0.0.0.0';
const httpPort = Number(process.env.PORT_HTTP ?? 8000);
const grpcPort = Number(process.env.PORT_GRPC ?? 9000);

function log(kind: string, verdict: string, what: string): void {
  process.stdout.write(`[${kind}] ${verdict} ${what}\n`);
}

const httpServer = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const allowed = req.headers[CHECK_HEADER] === ALLOWED_VALUE;
    log('HTTP', allowed ? 'allowed' : 'denied', `${req.method} ${req.headers.host}${req.url}`);
    if (allowed) {
      res.writeHead(200, { [RESULT_HEADER]: 'allowed' });
      res.end();
    } else {
      res.writeHead(403, { [RESULT_HEADER]: 'denied', 'content-type': 'text/plain' });
      res.end(DENY_BODY);
    }
  });
});

interface CheckRequest {
  attributes?: { request?: { http?: { method?: string; host?: string; path?: string; headers?: Record<string, string> } } };
}

const require = createRequire(import.meta.url);
const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const definition = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', {
  keepCase: true,
  longs: Number,
  enums: String,
  includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d)),
});
const pkg = grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };

const grpcServer = new grpc.Server();
grpcServer.addService(pkg.envoy.service.auth.v3.Authorization.service, {
  Check(call: grpc.ServerUnaryCall<CheckRequest, unknown>, done: grpc.sendUnaryData<unknown>) {
    const h = call.request.attributes?.request?.http ?? {};
    const allowed = h.headers?.[CHECK_HEADER] === ALLOWED_VALUE;
    log('gRPC', allowed ? 'allowed' : 'denied', `${h.method} ${h.host}${h.path}`);
    const header = (value: string) => [{ header: { key: RESULT_HEADER, value } }];
    if (allowed) done(null, { status: { code: grpc.status.OK }, ok_response: { headers: header('allowed') } });
    else done(null, { status: { code: grpc.status.PERMISSION_DENIED }, denied_response: { status: { code: 'Forbidden' }, headers: header('denied'), body: DENY_BODY } });
  },
});

httpServer.listen(httpPort, host, () => log('HTTP', 'listening', `${host}:${httpPort}`));
grpcServer.bindAsync(`${host}:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`ext-authz: cannot listen on ${host}:${grpcPort}: ${err.message}\n`);
    process.exit(1);
  }
  log('gRPC', 'listening', `${host}:${grpcPort}`);
});

const stop = (): void => {
  httpServer.close();
  grpcServer.tryShutdown(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

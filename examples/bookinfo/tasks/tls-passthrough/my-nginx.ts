// A stand-in for the nginx server of Istio's "Ingress Gateway without TLS Termination" task: an
// HTTPS server with its own certificate (TLS_CERT_DIR/tls.crt and tls.key), on $HOST:$PORT as
// `rig up` assigns them. The gateway passes TLS through, so the client sees this certificate.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';

const dir = process.env.TLS_CERT_DIR ?? 'certs';
const server = https.createServer({ cert: readFileSync(path.join(dir, 'tls.crt')), key: readFileSync(path.join(dir, 'tls.key')) }, (req, res) => {
  res.setHeader('content-type', 'text/html');
  res.end('<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>\n');
});
server.listen(Number(process.env.PORT ?? 443), process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));

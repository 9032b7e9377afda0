// A trace collector for the telemetry cases: accepts OTLP/HTTP (and Zipkin) span exports and
// answers 200, counting what it got. Runs as its own process off the proxies' core
// (`node bench/servers/otlp-sink.ts PORT`): the collector is not part of the pod's budget.
import http from 'node:http';
import path from 'node:path';
import { startServer, type Server } from './server.ts';
import { freePort } from '../lib/ports.ts';

export async function startOtlpSink(opts: { core: number }): Promise<Server> {
  const port = await freePort();
  return startServer(
    { name: 'otlp-sink', core: opts.core, kind: 'load', command: process.execPath, args: [path.join(import.meta.dirname, 'otlp-sink.ts'), String(port)] },
    'collector',
    port,
  );
}

if (import.meta.main) {
  let exports = 0;
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json', 'content-length': 0 });
      res.end();
    });
  });
  srv.listen(Number(process.argv[2]), '127.0.0.1');
  process.on('SIGTERM', () => {
    process.stderr.write(`otlp-sink: ${exports} exports\n`);
    process.exit(0);
  });
}

// HAProxy as a proxy hop: one thread, HTTP mode, keep-alive on both sides, idle upstream
// connections reused across client connections (what a sidecar does).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, startServer, type Server } from './server.ts';
import { freePort } from '../lib/ports.ts';

export async function startHaproxy(opts: { name: string; role: Server['role']; core: number; upstreamPort: number }): Promise<Server> {
  const port = await freePort();
  const dir = scratchDir(opts.name);
  const conf = path.join(dir, 'haproxy.cfg');
  writeFileSync(
    conf,
    `global
  nbthread 1
  maxconn 5000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server s1 127.0.0.1:${opts.upstreamPort}
`,
  );
  return startServer({ name: opts.name, core: opts.core, command: 'haproxy', args: ['-db', '-f', conf] }, opts.role, port);
}

// nginx as the upstream (a 1 KB body from memory, HTTP/1.1 or h2c) and as a one-hop proxy.
// One worker, access log off, everything under a scratch directory.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, startServer, type Server } from './server.ts';
import { freePort } from '../lib/ports.ts';

/** The upstream's response body: 1024 bytes. */
export const BODY_1KB = 'x'.repeat(1023) + '\n';

function nginxConf(dir: string, server: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
${server}
}
`;
}

async function startNginx(name: string, role: Server['role'], core: number, port: number, server: string): Promise<Server> {
  const dir = scratchDir(name);
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf(dir, server));
  return startServer(
    { name, core, command: 'nginx', args: ['-p', dir, '-e', `${dir}/error.log`, '-c', conf, '-g', 'daemon off;'] },
    role,
    port,
  );
}

export async function startNginxUpstream(opts: { core: number; http2?: boolean }): Promise<Server> {
  const port = await freePort();
  const listen = opts.http2 ? `127.0.0.1:${port} http2` : `127.0.0.1:${port}`;
  return startNginx(
    opts.http2 ? 'nginx-upstream-h2c' : 'nginx-upstream',
    'upstream',
    opts.core,
    port,
    `  server {
    listen ${listen} reuseport;
    location / { default_type text/plain; return 200 "${BODY_1KB.slice(0, -1)}\\n"; }
  }`,
  );
}

export async function startNginxProxy(opts: { core: number; upstreamPort: number }): Promise<Server> {
  const port = await freePort();
  return startNginx(
    'nginx-proxy',
    'proxy',
    opts.core,
    port,
    `  upstream backend { server 127.0.0.1:${opts.upstreamPort}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port} reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`,
  );
}

// Shared pieces of the CA tests: a temporary state dir, a real gRPC TLS server with the CA's
// service, and openssl run on real files.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { addCaService, BootstrapTokenAuthenticator, BootstrapTokens, ClientCertificateAuthenticator, type CertificateAuthority } from '../../src/ca/index.ts';

export function tempDir(t: TestContext, prefix = 'rig-ca-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Serves the CA's IstioCertificateService over TLS on 127.0.0.1 (port 0 unless given), authenticating as attachCertificateAuthority does. */
export async function serveCa(t: TestContext, ca: CertificateAuthority, stateDir: string, port = 0): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  const tokens = new BootstrapTokens(stateDir);
  addCaService(server, ca, [new ClientCertificateAuthenticator(tokens), new BootstrapTokenAuthenticator(tokens)]);
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ca.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))));
  t.after(() => server.forceShutdown());
  return { port: bound, server };
}

export function openssl(args: string[], cwd?: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

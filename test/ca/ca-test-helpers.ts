// Shared pieces of the CA tests: a real gRPC TLS server with the CA's
// service, and openssl run on real files.
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { addCaService, BootstrapTokenAuthenticator, BootstrapTokens, ClientCertificateAuthenticator, type CertificateAuthority } from '../../src/ca/index.ts';

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

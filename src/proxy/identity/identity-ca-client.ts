// The proxy's side of istio.v1.auth.IstioCertificateService: a TLS channel to the CA trusting the
// given roots, the bootstrap token (read afresh for each call) as the bearer credential, and, for
// renewals, the current workload certificate as the client certificate.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { certificateServiceClient, type IstioCertificateRequest, type IstioCertificateResponse } from '../../ca/ca-proto.ts';

export interface CaClientOptions {
  /** HOST:PORT of the CA (the control plane's :15012). */
  address: string;
  /** PEM roots the CA's serving certificate must chain to. */
  rootPem: Buffer;
  tokenFile?: string;
  /** Name the CA's certificate is verified against (Istio's: istiod.istio-system.svc). */
  serverName?: string;
  /** The workload's current certificate, presented over mutual TLS so renewals need no token. */
  clientCertificate?: { privateKeyPem: string; certChainPem: string };
}

export class CaClient {
  private readonly client: grpc.Client;
  private readonly tokenFile: string | undefined;
  private readonly hasClientCert: boolean;

  constructor(opts: CaClientOptions) {
    const Client = certificateServiceClient();
    const serverName = opts.serverName ?? 'istiod.istio-system.svc';
    const cc = opts.clientCertificate;
    const credentials = cc ? grpc.credentials.createSsl(opts.rootPem, Buffer.from(cc.privateKeyPem), Buffer.from(cc.certChainPem)) : grpc.credentials.createSsl(opts.rootPem);
    this.client = new Client(opts.address, credentials, {
      'grpc.ssl_target_name_override': serverName,
      'grpc.default_authority': serverName,
    });
    this.tokenFile = opts.tokenFile;
    this.hasClientCert = cc !== undefined;
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    // Without a client certificate the token is required; with one it is sent when readable.
    if (this.tokenFile && (!this.hasClientCert || fs.existsSync(this.tokenFile))) {
      const token = fs.readFileSync(this.tokenFile, 'utf8').trim();
      md.set('authorization', `Bearer ${token}`);
    }
    return md;
  }

  /** Sends a CSR; resolves with Istio's cert_chain (workload certificate first, root bundle last). */
  createCertificate(csrPem: string, ttlSeconds: number, metadata: Record<string, string>, timeoutMs = 10_000): Promise<string[]> {
    const request: IstioCertificateRequest = {
      csr: csrPem,
      validity_duration: ttlSeconds,
      metadata: { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v }])) },
    };
    return new Promise((resolve, reject) => {
      let md: grpc.Metadata;
      try {
        md = this.metadata();
      } catch (err) {
        reject(new Error(`cannot read the token file ${this.tokenFile}: ${(err as Error).message}`));
        return;
      }
      const method = (this.client as unknown as Record<string, (...a: unknown[]) => void>).CreateCertificate!;
      method.call(this.client, request, md, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res?: IstioCertificateResponse) => {
        if (err) reject(err);
        else if (!res?.cert_chain?.length) reject(new Error('the CA answered with an empty cert_chain'));
        else resolve(res.cert_chain);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

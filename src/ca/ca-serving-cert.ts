// A grpc-js CertificateProvider fed by the CA, so the :15012 server's certificate and trust
// bundle change in place on renewal and root rotation.
import type * as grpc from '@grpc/grpc-js';

type Provider = grpc.experimental.CertificateProvider;
type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;

export class ServingCertProvider implements Provider {
  private identity: IdentityUpdate | null = null;
  private ca: Buffer | null = null;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  update(identity: IdentityUpdate, ca: Buffer): void {
    this.identity = identity;
    this.ca = ca;
    for (const l of this.caListeners) l({ caCertificate: ca });
    for (const l of this.identityListeners) l(identity);
  }

  updateCa(ca: Buffer): void {
    this.ca = ca;
    for (const l of this.caListeners) l({ caCertificate: ca });
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Asynchronously: grpc-js registers its watcher only after adding the listener.
    queueMicrotask(() => {
      if (this.ca && this.caListeners.has(listener)) listener({ caCertificate: this.ca });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identity && this.identityListeners.has(listener)) listener(this.identity);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

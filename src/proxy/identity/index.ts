export { IdentityManager, secrets, systemCaSecret, DEFAULT_SECRET, ROOT_SECRET, SYSTEM_CA_SECRET } from './identity-manager.ts';
export type { IdentityManagerOptions, IdentityCertificate, IdentityState, IdentityEvents } from './identity-manager.ts';
export { CaClient } from './identity-ca-client.ts';
export type { CaClientOptions } from './identity-ca-client.ts';
export { createKeyAndCsr } from './identity-csr.ts';

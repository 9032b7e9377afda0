export { DEFAULT_CONFIG, nameserversFromResolvConf, type IptablesConfig } from './iptables-config.ts';
export { generateRules, formatRules, CHAINS, OWNED_CHAINS, type TableRules, type Family } from './iptables-rules.ts';
export { backend, detectBackend, BACKEND_NAMES, type Backend, type BackendName } from './iptables-backend.ts';
export { applyRules, cleanupRules, dryRun } from './iptables-apply.ts';

export { startDnsProxy, type DnsProxy, type DnsProxyOptions, type DnsProxyStats } from './dns-server.ts';
export { compileNameTable, validateNameTable, NameTableError, type NameTable, type NameInfo, type CompiledNameTable } from './dns-name-table.ts';
export { upstreamsFromResolvConf, type Upstream } from './dns-upstream.ts';
export { NDS_TYPE_URL, packNameTable, unpackNameTable } from './dns-nds.ts';

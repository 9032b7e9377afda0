export { createPodNetwork, removeNetns, PROXY_UID, type Pod, type PodNetwork, type CreatePodOptions, type PodNetworkOptions } from './netns-network.ts';
export { cleanupNetnsLeftovers, type CleanupReport } from './netns-cleanup.ts';
export { requireNetnsSupport, spawnInNetns, execInNetns, netnsArgv, listNetns, EXPLICIT_MODE_HINT, type InNetnsOptions } from './netns-command.ts';
export { POD_RANGE } from './netns-addresses.ts';

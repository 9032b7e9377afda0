export { WorkloadHealthChecker } from './workload-health-checker.ts';
export type { HealthEvent, WorkloadHealthCheckerOptions } from './workload-health-checker.ts';
export { probeOnce } from './workload-probe.ts';
export type { ProbeOutcome, ProbeTarget } from './workload-probe.ts';
export { readinessProbeOf, readinessProbeErrors, ReadinessProbeError } from './readiness-probe.ts';
export type { ReadinessProbe } from './readiness-probe.ts';
export { startWorkloadHealth } from './workload-health-agent.ts';
export type { WorkloadHealthAgentOptions } from './workload-health-agent.ts';

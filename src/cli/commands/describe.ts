// `rig x describe pod <pod>` (also `rig describe pod`): istioctl's `experimental describe pod`, the
// Istio configuration that shapes one workload replica's traffic, from the control plane's debug data.
import type { Command } from 'commander';
import { addControlPlaneOptions, controlPlaneUrl } from './controlplane-option.ts';

function definePod(describe: Command): void {
  addControlPlaneOptions(describe.command('pod').alias('po').description("a pod (workload replica) and the Services, DestinationRules, VirtualServices, PeerAuthentication, AuthorizationPolicies and ingress gateways that apply to it"))
    .argument('<pod>', '<pod>[.<namespace>], as rig status or rig proxy-status name it (e.g. reviews-v1-0)')
    .option('-n, --namespace <ns>', "the pod's namespace (default: any; names in other namespaces print as name.namespace)")
    .option('-i, --istio-namespace <ns>', "Istio's root namespace, whose policies apply mesh-wide", 'istio-system')
    .action(async (pod: string, o: { controlplane?: string; stateDir: string; namespace?: string; istioNamespace: string }) => {
      const { describePodFromControlPlane } = await import('../../xds/debug/describe-pod.ts');
      process.stdout.write(await describePodFromControlPlane(controlPlaneUrl(o), pod, { namespace: o.namespace, rootNamespace: o.istioNamespace }));
    });
}

/** `rig describe`: its resource kinds as subcommands. */
export function define(cmd: Command): void {
  definePod(cmd);
}

/** `rig x` (istioctl experimental): `rig x describe pod`. */
export function defineExperimental(cmd: Command): void {
  definePod(cmd.command('describe').alias('des').description('describe a resource and the Istio configuration that applies to it'));
}

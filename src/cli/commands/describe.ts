// `rig x describe pod|service` (also `rig describe`): istioctl's `experimental describe`, the Istio
// configuration that shapes one workload replica's or one Service's traffic, from the control
// plane's debug data.
import type { Command } from 'commander';
import { addControlPlaneOptions, controlPlaneUrl } from './controlplane-option.ts';

type DescribeOptions = { controlplane?: string; stateDir: string; namespace?: string; istioNamespace?: string };

const ROOT_NAMESPACE_HELP = "Istio's root namespace, whose policies apply mesh-wide (default: the control plane's mesh config rootNamespace)";

function definePod(describe: Command): void {
  addControlPlaneOptions(describe.command('pod').alias('po').description("a pod (workload replica) and the Services, DestinationRules, VirtualServices, PeerAuthentication, AuthorizationPolicies and ingress gateways that apply to it"))
    .argument('<pod>', '<pod>[.<namespace>], as rig status or rig proxy-status name it (e.g. reviews-v1-0)')
    .option('-n, --namespace <ns>', "the pod's namespace (default: any; names in other namespaces print as name.namespace)")
    .option('-i, --istio-namespace <ns>', ROOT_NAMESPACE_HELP)
    .action(async (pod: string, o: DescribeOptions) => {
      const { describePodFromControlPlane } = await import('../../xds/debug/describe-pod.ts');
      process.stdout.write(await describePodFromControlPlane(controlPlaneUrl(o), pod, { namespace: o.namespace, rootNamespace: o.istioNamespace }));
    });
}

function defineService(describe: Command): void {
  addControlPlaneOptions(describe.command('service').alias('svc').description('a Service: its ports, its pods (with or without a sidecar), the DestinationRule and VirtualService that apply, the mTLS mode of its pods and the ingress gateways exposing it'))
    .argument('<service>', '<service>[.<namespace>] (e.g. reviews)')
    .option('-n, --namespace <ns>', "the Service's namespace", 'default')
    .option('-i, --istio-namespace <ns>', ROOT_NAMESPACE_HELP)
    .action(async (service: string, o: DescribeOptions) => {
      const { describeServiceFromControlPlane } = await import('../../xds/debug/describe-service.ts');
      process.stdout.write(await describeServiceFromControlPlane(controlPlaneUrl(o), service, { namespace: o.namespace, rootNamespace: o.istioNamespace }));
    });
}

/** `rig describe`: its resource kinds as subcommands. */
export function define(cmd: Command): void {
  definePod(cmd);
  defineService(cmd);
}

/** `rig x` (istioctl experimental): `rig x describe pod|service`. */
export function defineExperimental(cmd: Command): void {
  define(cmd.command('describe').alias('des').description('describe a resource and the Istio configuration that applies to it'));
}

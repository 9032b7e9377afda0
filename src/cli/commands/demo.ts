// `rig demo`: the README's first command. Bookinfo on a local mesh, its ingress gateway on
// 127.0.0.1:8080, traffic to /productpage, and where to look.
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { DEMO_PATHS, demoMeshConfig, GATEWAY_API_DEMO_PATHS, GATEWAY_API_PORTS, productPageUrl, whereToLook } from '../../local/demo.ts';
import { runInForeground } from '../../local/run-up.ts';
import { DEFAULT_STATE_DIR } from '../../local/state-dir.ts';
import { TrafficGenerator } from '../../local/traffic-generator.ts';
import { defineUpOptions, upOptions, type UpFlags } from './up.ts';

interface DemoFlags extends UpFlags {
  rate: string;
  traffic: boolean;
  gatewayApi?: boolean;
}

export function define(cmd: Command): void {
  defineUpOptions(cmd)
    .option('--rate <rps>', 'requests per second the traffic generator sends to /productpage', '2')
    .option('--no-traffic', 'do not generate traffic')
    .option('--gateway-api', "serve Bookinfo through a Kubernetes Gateway API Gateway and HTTPRoute (Istio's Getting Started) instead of Istio's Gateway and VirtualService")
    .action(async (flags: DemoFlags) => {
      const rate = Number(flags.rate);
      if (flags.traffic && !(rate > 0)) throw new RigError('MESH_ERR_USAGE', `--rate ${flags.rate}: give requests per second, a number > 0`);
      const opts = flags.gatewayApi
        ? await upOptions({ ...flags, ingress: false }, GATEWAY_API_DEMO_PATHS)
        : await upOptions({ ...flags, ingress: true }, DEMO_PATHS);
      if (flags.gatewayApi) opts.gatewayPorts = { ...GATEWAY_API_PORTS, ...opts.gatewayPorts };
      const stateDirFlag = flags.stateDir === DEFAULT_STATE_DIR ? '' : ` --state-dir ${flags.stateDir}`;
      let traffic: TrafficGenerator | undefined;
      await runInForeground(
        { ...opts, mesh: demoMeshConfig(opts.mesh, flags.meshConfig !== undefined) },
        (sup) => {
          process.stdout.write(whereToLook(sup, stateDirFlag).join('\n') + '\n');
          if (!flags.traffic) return;
          traffic = new TrafficGenerator({ url: productPageUrl(sup), rate, report: (line) => process.stdout.write(`traffic | ${line}\n`) });
          traffic.start();
        },
        () => traffic?.stop(),
      );
    });
}

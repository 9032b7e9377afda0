// The benchmark's rule for windows in which the servers' core ran slow (bench/cases/slow-windows.ts):
// which windows it measures again, and which window's figures it keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keepFasterWindow, slowWindows } from '../../bench/cases/slow-windows.ts';
import { coreGauge } from '../../bench/report/markdown.ts';
import type { CaseResult, ServerFigures } from '../../bench/cases/measure.ts';

const server = (name: string, role: ServerFigures['role'], vcpuAtRate: number): ServerFigures => ({
  name,
  role,
  startupMs: 100,
  rssIdleMB: 40,
  rssAt1000MB: 50,
  rssWarmupPeakMB: 55,
  vcpuAtRate,
  rssSaturationMB: 60,
  cpuSecondsPer1000AtSaturation: 0.03,
});

function result(id: string, hops: 0 | 1 | 2, upstream: string, gauge: number, proxyVcpu: number): CaseResult {
  const servers = [server(upstream, 'upstream', gauge / 1000)];
  if (hops > 0) servers.push(server(id, 'proxy', proxyVcpu));
  const latency = { serverCore: 0, serversOnServerCore: 0.1, loadCore: 0, attempts: 1, upstreamUsPerRequest: gauge };
  return {
    id,
    title: id,
    protocol: 'h1',
    proxy: hops ? 'rig' : 'none',
    hops,
    status: 'ok',
    latency: { latency: { p50: 0.2 } } as CaseResult['latency'],
    servers,
    disturbance: { latency, saturation: { ...latency, upstreamUsPerRequest: undefined } },
  };
}

test('a window is slow when its upstream used more than 1.3× the lowest CPU per request of the same upstream behind a proxy', () => {
  const results = [
    result('direct', 0, 'nginx-upstream', 34, 0), // a direct client loads the upstream differently: not compared
    result('rig-1hop', 1, 'nginx-upstream', 17, 0.109),
    result('haproxy-1hop', 1, 'nginx-upstream', 12, 0.052),
    result('nginx-1hop', 1, 'nginx-upstream', 11, 0.048),
    result('rig-2hop', 2, 'nginx-upstream', 14, 0.098), // 1.27×: not slow
    result('h2-rig-1hop', 1, 'nginx-upstream-h2c', 26, 0.22), // alone in its group
  ];
  assert.deepEqual(slowWindows(results).map((r) => r.id), ['rig-1hop']);
  assert.deepEqual(slowWindows(results.filter((r) => r.id !== 'nginx-1hop')).map((r) => r.id), ['rig-1hop'], 'lowest 12: 17 is 1.42×');
  assert.deepEqual(slowWindows(results.filter((r) => r.id !== 'nginx-1hop' && r.id !== 'haproxy-1hop')), [], 'lowest 14: 17 is 1.21×');
  assert.deepEqual(slowWindows(results.filter((r) => r.id !== 'rig-1hop')), []);
});

test('the faster window is kept with all of its figures; the slower gauge is recorded', () => {
  const r = result('rig-1hop', 1, 'nginx-upstream', 17, 0.109);
  const again: CaseResult = {
    ...result('rig-1hop', 1, 'nginx-upstream', 11.5, 0),
    latency: { latency: { p50: 0.15 } } as CaseResult['latency'],
    latencyWindow: {
      servers: [
        { rssAt1000MB: 20, rssWarmupPeakMB: 21, vcpuAtRate: 0.012 },
        { rssAt1000MB: 52, rssWarmupPeakMB: 58, vcpuAtRate: 0.071 },
      ],
      disturbance: { serverCore: 0, serversOnServerCore: 0.08, loadCore: 0, attempts: 1, upstreamUsPerRequest: 11.5 },
    },
  };
  keepFasterWindow(r, again);
  assert.equal(r.servers![1].vcpuAtRate, 0.071);
  assert.equal(r.servers![1].rssAt1000MB, 52);
  assert.equal(r.servers![1].rssSaturationMB, 60, 'saturation figures stay');
  assert.equal(r.latency!.latency.p50, 0.15);
  assert.equal(r.disturbance!.latency.upstreamUsPerRequest, 11.5);
  assert.deepEqual(r.disturbance!.latency.slowAttempts, [{ upstreamUsPerRequest: 17, vcpuAtRate: [0.017, 0.109] }]);

  const slower = { ...again, latencyWindow: { ...again.latencyWindow!, disturbance: { ...again.latencyWindow!.disturbance, upstreamUsPerRequest: 18 } } };
  keepFasterWindow(r, slower);
  assert.equal(r.servers![1].vcpuAtRate, 0.071, 'a slower window does not replace a faster one');
  assert.deepEqual(
    r.disturbance!.latency.slowAttempts!.map((a) => a.upstreamUsPerRequest),
    [17, 18],
  );
  assert.match(coreGauge(r), /^11\.5 \(not kept: 17\.0: 0\.109 vCPU; 18\.0: 0\.071 vCPU\)$/);
});

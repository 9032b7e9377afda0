// Runs Debian's Prometheus (/usr/bin/prometheus) for a test: its own config and data directory,
// a free loopback port, a short scrape interval; stopped and removed by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/local/ports.ts';

export interface Prometheus {
  readonly url: string;
  /** Instant query; returns the result vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Resolves once every target was scraped successfully at least once after `since`. */
  waitForScrapes(since: number): Promise<void>;
  stop(): Promise<void>;
}

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

async function getJson(url: string): Promise<{ status: string; data: unknown; error?: string }> {
  const r = await fetch(url);
  return (await r.json()) as { status: string; data: unknown; error?: string };
}

export async function startPrometheus(targets: Record<string, number>): Promise<Prometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-prom-'));
  const port = await freePort();
  const scrapeConfigs = Object.entries(targets).map(([job, p]) => `  - job_name: ${job}\n    metrics_path: /stats/prometheus\n    static_configs: [{ targets: ['127.0.0.1:${p}'] }]\n`);
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n${scrapeConfigs.join('')}`);
  let log = '';
  const child: ChildProcess = spawn(PROMETHEUS_BIN, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          r();
        }, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${log}`);
      try {
        if ((await fetch(`${url}/-/ready`)).ok) break;
      } catch {
        // not listening yet
      }
      if (i > 300) throw new Error(`prometheus not ready after 30s: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url,
    async query(promql) {
      const r = await getJson(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      if (r.status !== 'success') throw new Error(`query ${promql}: ${r.error}`);
      return (r.data as { result: { metric: Record<string, string>; value: [number, string] }[] }).result;
    },
    async waitForScrapes(since) {
      for (let i = 0; i < 200; i++) {
        const r = await getJson(`${url}/api/v1/targets`);
        const active = (r.data as { activeTargets: { health: string; lastScrape: string; lastError: string }[] }).activeTargets;
        if (active.length === Object.keys(targets).length && active.every((a) => a.health === 'up' && Date.parse(a.lastScrape) > since)) return;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error(`targets not scraped: ${JSON.stringify((await getJson(`${url}/api/v1/targets`)).data)}`);
    },
    stop,
  };
}

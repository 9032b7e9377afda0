// The terminal's view of an app's output: rig up's sidecar agent runs the Workload's readiness
// probe every periodSeconds (the kubelet's job in Kubernetes), and an app that logs each request
// it serves (as Bookinfo's do) would fill the terminal with a probe line per replica a second.
// Those lines stay in the app's log file (`rig logs NAME`); the terminal leaves them out.
import type { SidecarProbe } from './replica-probe.ts';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The app's lines the terminal shows: all but access-log lines of the probe's request (`GET <path>`
 * followed by a space, a quote, a query or the end, as in common access-log formats). `onHidden` is
 * called with the first line left out. Undefined (show everything) without an HTTP probe.
 */
export function appEcho(probe: SidecarProbe | undefined, onHidden: (line: string) => void): ((line: string) => boolean) | undefined {
  const probePath = probe?.httpGet?.path;
  if (!probePath) return undefined;
  const request = new RegExp(`\\bGET ${escapeRegExp(probePath)}(?=[\\s?"]|$)`);
  let told = false;
  return (line) => {
    if (!request.test(line)) return true;
    if (!told) {
      told = true;
      onHidden(line);
    }
    return false;
  };
}

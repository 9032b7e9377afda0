// pool.request(): a whole response as a promise, for the proxy's own small requests (the JWKS
// fetch). The response resolves at its head; body.text() once the body is complete.
import type { Dispatcher } from 'undici';
import type { UpstreamDispatchOptions, UpstreamRequestOptions, UpstreamResponse } from '../upstream-pool.ts';
import { H1ErrorCode, H1PoolError } from './h1-errors.ts';

interface Dispatching {
  dispatch(opts: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
}

class TextBody {
  private readonly chunks: Buffer[] = [];
  private result: Promise<string>;
  private settle!: (err: Error | undefined) => void;

  constructor() {
    this.result = new Promise<string>((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve(Buffer.concat(this.chunks).toString()));
    });
    // A body nobody reads must not become an unhandled rejection.
    this.result.catch(() => undefined);
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
  }

  end(err?: Error): void {
    this.settle(err);
  }

  text(): Promise<string> {
    return this.result;
  }
}

export function requestThrough(pool: Dispatching, opts: UpstreamRequestOptions): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const signal = opts.signal;
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const body = new TextBody();
    let started = false;
    let controller: Dispatcher.DispatchController | undefined;
    const onAbort = (): void => controller?.abort((signal?.reason as Error | undefined) ?? new H1PoolError(H1ErrorCode.Aborted, 'request aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const settled = (): void => signal?.removeEventListener('abort', onAbort);
    pool.dispatch(opts, {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(_c, statusCode) {
        started = true;
        resolve({ statusCode, body });
      },
      onResponseData(_c, chunk) {
        body.push(chunk);
      },
      onResponseEnd() {
        settled();
        body.end();
      },
      onResponseError(_c, err) {
        settled();
        if (started) body.end(err);
        else reject(err);
      },
    });
  });
}

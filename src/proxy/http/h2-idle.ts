// The HCM idle_timeout on a downstream HTTP/2 session, as Envoy counts it: time without active
// streams. When it expires the session is closed gracefully (GOAWAY; streams that raced it are
// refused and may be retried by the client). A stream waiting on a slow upstream keeps the
// session open: stream_idle_timeout and the route timeout govern it.
import type http2 from 'node:http2';

const kIdle = Symbol('rig.h2Idle');
const kOwner = Symbol('rig.h2Session');

interface IdleState {
  active: number;
  timer: NodeJS.Timeout;
}

type TrackedSession = http2.ServerHttp2Session & { [kIdle]?: IdleState };
// stream.session is gone by the time a stream emits 'close'.
type OwnedStream = http2.ServerHttp2Stream & { [kOwner]?: TrackedSession };

// The timer is never cleared while streams run (a cleared timer cannot be refreshed): it fires,
// sees streams and does nothing; the last stream to close re-arms it for a full period.
function onIdle(session: TrackedSession): void {
  if (session[kIdle]!.active === 0 && !session.closed && !session.destroyed) session.close();
}

function onStream(this: TrackedSession, stream: OwnedStream): void {
  const st = this[kIdle]!;
  st.active++;
  stream[kOwner] = this;
  stream.once('close', onStreamClose);
}

function onStreamClose(this: OwnedStream): void {
  const st = this[kOwner]?.[kIdle];
  if (st && --st.active === 0) st.timer.refresh();
}

function onSessionClose(this: TrackedSession): void {
  const st = this[kIdle];
  if (st) clearTimeout(st.timer);
}

export function closeWhenIdle(session: http2.ServerHttp2Session, idleTimeoutMs: number): void {
  if (!(idleTimeoutMs > 0)) return;
  const s = session as TrackedSession;
  s[kIdle] = { active: 0, timer: setTimeout(onIdle, idleTimeoutMs, session) };
  s.on('stream', onStream);
  s.once('close', onSessionClose);
}

// The client sessions of one UpstreamTlsContext: up to max_session_keys per upstream host, most
// recent first, as Envoy keeps them per context (per host here: a session only resumes with the
// server that issued it, so one host's sessions are never offered to another).
//
// Which one a new connection offers: the most recent session not offered yet, else the most recent
// one. TLS 1.3 tickets are meant for one use (RFC 8446 C.4; Envoy's BoringSSL drops one once
// offered), and a server that enforces it (OpenSSL's stateful tickets, a single-use session cache)
// refuses a second offer, so fresh ones go first: with N kept, N concurrent connections resume.
// But Node's own servers, OpenSSL's and BoringSSL's stateless tickets and TLS 1.2 sessions accept
// a session again (measured with node 24: one ticket resumed three connections), so rather than a
// full handshake a connection that finds no fresh session offers an offered one: resumption rates
// stay highest against both kinds of servers.
const MAX_HOSTS = 1024;

interface Kept {
  readonly session: Buffer;
  offered: boolean;
}

export class TlsSessionCache {
  private readonly perHost: number;
  /** Host key → sessions, most recent first; Map order is least recently used host first. */
  private readonly hosts = new Map<string, Kept[]>();

  constructor(maxSessionKeys: number) {
    this.perHost = maxSessionKeys;
  }

  /** The session a new connection to `host` offers, or undefined. */
  offer(host: string): Buffer | undefined {
    const kept = this.hosts.get(host);
    if (!kept) return undefined;
    for (const k of kept) {
      if (!k.offered) {
        k.offered = true;
        return k.session;
      }
    }
    return kept[0].session;
  }

  /** A session a connection to `host` received; past max_session_keys, an offered one goes first, else the oldest. */
  add(host: string, session: Buffer): void {
    let kept = this.hosts.get(host);
    if (kept) this.hosts.delete(host);
    else {
      if (this.hosts.size >= MAX_HOSTS) this.hosts.delete(this.hosts.keys().next().value!);
      kept = [];
    }
    this.hosts.set(host, kept);
    if (kept.length >= this.perHost) {
      let i = kept.length - 1;
      while (i > 0 && !kept[i].offered) i--;
      kept.splice(kept[i].offered ? i : kept.length - 1, 1);
    }
    kept.unshift({ session, offered: false });
  }

  clear(): void {
    this.hosts.clear();
  }
}

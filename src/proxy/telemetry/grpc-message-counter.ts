// Counts gRPC messages in a body stream (what Envoy's grpc_stats filter gives Istio's
// request/response_messages_total): each message is a 5-byte prefix — a compressed flag and a
// big-endian uint32 length — and that many bytes; chunks may split prefixes and messages anywhere.
export class GrpcMessageCounter {
  /** Complete prefixes seen (a message counts once its prefix is read, as Envoy's frame inspector). */
  count = 0;
  /** Bytes of the current message still to skip. */
  private remaining = 0;
  /** Prefix bytes read so far (0-4), and the length bytes among them. */
  private prefixRead = 0;
  private length = 0;

  feed(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      // Inside a prefix: byte 0 is the flag, bytes 1-4 the length.
      if (this.prefixRead > 0) this.length = this.length * 256 + chunk[i];
      i++;
      if (++this.prefixRead === 5) {
        this.count++;
        this.remaining = this.length;
        this.prefixRead = 0;
        this.length = 0;
      }
    }
  }
}

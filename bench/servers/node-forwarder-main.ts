// A bare Node.js byte forwarder: each accepted connection gets its own upstream connection and
// the bytes are piped both ways, with no HTTP parsing at all. It is the least any proxy running
// in Node's event loop does per request (one read and one write each way), so its throughput is
// the ceiling for rig proxy on the same core. Arguments: listen port, upstream port.
import net from 'node:net';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
net
  .createServer({ noDelay: true }, (downstream) => {
    const upstream = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true });
    downstream.pipe(upstream).pipe(downstream);
    const close = () => {
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  })
  .listen(listenPort, '127.0.0.1');

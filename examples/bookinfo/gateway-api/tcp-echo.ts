// Istio's tcp-echo-server (samples/tcp-echo) for one machine: answers each line it reads with
// "<prefix> <line>", the prefix given as the first argument (tcp-echo-v1 says "one", v2 "two").
import net from 'node:net';
import readline from 'node:readline';

const prefix = process.argv[2] ?? 'hello';
const port = Number(process.env.PORT ?? 9000);
const host = process.env.HOST ?? '127.0.0.1';

net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  readline.createInterface({ input: socket }).on('line', (line) => socket.write(`${prefix} ${line}\n`));
}).listen(port, host, () => console.log(`tcp-echo (${prefix}) listening on ${host}:${port}`));

/**
 * The daemons of bench section [10], in a child process of their own (a real daemon is another process;
 * on a 2-CPU machine this also gives client and daemon a CPU each). Started by kernel-client.ts with
 * `node --import tsx kernel-daemon.ts <dir>`; prints one JSON line `{"trestle": path, "jsonrpc": path}`
 * once both listen, and stops when its stdin closes (or on SIGTERM).
 *
 * - trestle: `createKernelServer` from `@trestle/kernel-client/server` (length-prefixed JSON; requests
 *   with an `id` are multiplexed, requests without one are answered in order). The raw floor client talks
 *   to this same server, so trestle vs floor is the client's cost.
 * - jsonrpc: a vscode-jsonrpc `MessageConnection` per accepted socket (Content-Length framed JSON-RPC 2.0).
 *
 * Both answer `ECHO` / `echo` with the params object as it came.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createKernelServer } from '@trestle/kernel-client/server';
import { createMessageConnection, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';

const directory = process.argv[2];
if (!directory) throw new Error('usage: kernel-daemon.ts <socket directory>');
const trestlePath = join(directory, 't.sock');
const jsonrpcPath = join(directory, 'j.sock');

const server = createKernelServer({
  methods: { ECHO: (params) => params },
  maxConnections: 1_024,
  maxInflightPerConnection: 256,
});
await server.listen({ path: trestlePath });

const sockets = new Set<net.Socket>();
const jsonrpc = net.createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  const connection = createMessageConnection(
    new SocketMessageReader(socket),
    new SocketMessageWriter(socket),
  );
  connection.onRequest('echo', (params: unknown) => params);
  connection.onClose(() => connection.dispose());
  connection.listen();
});
rmSync(jsonrpcPath, { force: true });
await new Promise<void>((resolve) => jsonrpc.listen(jsonrpcPath, resolve));

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  for (const socket of sockets) socket.destroy();
  jsonrpc.close();
  await server.close();
  rmSync(jsonrpcPath, { force: true });
  process.exit(0);
};
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
process.on('SIGTERM', () => void stop());
process.stdout.write(`${JSON.stringify({ trestle: trestlePath, jsonrpc: jsonrpcPath, pid: process.pid })}\n`);

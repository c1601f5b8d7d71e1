/**
 * A TCP proxy the remote tests control: it pipes each client connection to the target port; `cut(ms)`
 * destroys every connection (both sides) and refuses new ones (accepted, then destroyed at once) for
 * `ms`; `target` can move to a restarted server.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #target: number;
  #refuseUntil = 0;
  /** Connections accepted and piped, since the start. */
  connections = 0;

  private constructor(server: Server, target: number) {
    this.#server = server;
    this.#target = target;
  }

  static async start(target: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, target);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy is not listening');
    return address.port;
  }

  /** Where new connections go. */
  set target(port: number) {
    this.#target = port;
  }

  /** Drops every connection and refuses new ones for `ms`. */
  cut(ms: number): void {
    this.#refuseUntil = Date.now() + ms;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  async close(): Promise<void> {
    this.cut(0);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (Date.now() < this.#refuseUntil) {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = createConnection({ host: '127.0.0.1', port: this.#target });
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.#sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

import { honoursStop } from './call-control';
import { KernelTransportError } from './errors';
import type {
  AvailabilityOptions,
  KernelRequest,
  KernelTransport,
  SendOptions,
  TransportReply,
} from './types';

/** The reply of {@link nullTransport}: the request echoed back, marked `mock`. */
export interface NullTransportReply {
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly mock: true;
  readonly timestamp: number;
}

/**
 * A transport that reaches no daemon: every call succeeds with `{ method, params, mock: true, timestamp }`
 * (the seed's `NullTransport`). The client uses it while `enabled` is false. `wireBytes` is the UTF-8
 * length of that reply's JSON; it is always available, and `close()` does nothing.
 * @example
 * ```ts
 * const client = new KernelClient({ enabled: true, transport: nullTransport() });
 * (await client.ping()).payload; // { method: 'PING', params: {}, mock: true, timestamp: 1700000000.123 }
 * ```
 */
export function nullTransport(): KernelTransport {
  const transport: KernelTransport & { readonly [honoursStop]: true } = {
    [honoursStop]: true,
    name: 'null',
    endpoint: 'null://',
    async send(request: KernelRequest, options: SendOptions): Promise<TransportReply> {
      if ((options.abortWatch ?? options.signal).aborted)
        throw new KernelTransportError('aborted', 'the send was aborted');
      const body: NullTransportReply = {
        method: request.method,
        params: request.params,
        mock: true,
        timestamp: request.timestamp,
      };
      const wireBytes = Buffer.byteLength(JSON.stringify(body));
      if (wireBytes > options.maxResponseBytes)
        throw new KernelTransportError(
          'too_large',
          `the reply is ${wireBytes} bytes, more than maxResponseBytes (${options.maxResponseBytes})`,
        );
      return { body, wireBytes };
    },
    async isAvailable(_options: AvailabilityOptions): Promise<boolean> {
      return true;
    },
    async close(): Promise<void> {},
  };
  return transport;
}

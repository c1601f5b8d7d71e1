import type { KernelRequest } from './types';

/**
 * The JSON text of a request, `{"method","params","timestamp"[,"id"]}` in that order (as
 * `JSON.stringify` of those fields writes it), reusing `paramsJson` when the sender has it.
 * `paramsJson` itself never goes on the wire.
 * @param withId Whether to write `id` when the request has one.
 */
export function requestJson(request: KernelRequest, withId = true): string {
  const { method, params, timestamp, id, paramsJson } = request;
  const head = `{"method":${JSON.stringify(method)},"params":${paramsJson ?? JSON.stringify(params)},"timestamp":${JSON.stringify(timestamp)}`;
  return withId && id !== undefined ? `${head},"id":${JSON.stringify(id)}}` : `${head}}`;
}

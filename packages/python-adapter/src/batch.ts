import type { Ref, SessionHandle } from '@trestle/ref-registry';
import type { BlobList } from './codec';
import { adapterError, PythonAdapterErrorCode } from './errors';
import type { RawReply } from './pool';
import { checkName, type PythonBridge } from './python';
import type { BatchItem, BatchResult, CallOptions } from './types';
import { hostError, type WireError } from './wire-error';

/** @internal `Python.batch`: the items in one `batch` request, in one session. */
export async function runBatch(
  bridge: PythonBridge,
  items: readonly BatchItem[],
  options: CallOptions | undefined,
): Promise<BatchResult[]> {
  if (!Array.isArray(items) || items.length === 0) {
    throw adapterError(PythonAdapterErrorCode.InvalidArgument, 'batch() needs a non-empty array of items');
  }
  const firstRef = items.find((item): item is BatchItem & { ref: Ref } => 'ref' in item)?.ref;
  let session: SessionHandle | undefined;
  if (firstRef !== undefined) session = bridge.useRef(firstRef, options).session;
  session ??= bridge.sessionFor(options, undefined);
  const sessionOptions = { ...options, session };
  const blobs: BlobList = { parts: [], size: 0 };
  const labels: string[] = [];
  const wire = items.map((item, index) => {
    const path = `items[${index}]`;
    if ('ref' in item) {
      const ref = bridge.useRef(item.ref, sessionOptions).wire;
      if ('attr' in item) {
        checkName('attr', item.attr);
        labels.push(`${item.ref.typeName}.${item.attr}`);
        return { op: 'attr', session: session.id, ref, name: item.attr };
      }
      checkName('method', item.method);
      labels.push(`${item.ref.typeName}.${item.method}`);
      return {
        op: 'method',
        session: session.id,
        ref,
        name: item.method,
        args: bridge.encodeArgs(item.args, blobs, `${path}.args`),
        kwargs: bridge.encodeKwargs(item.kwargs, blobs, `${path}.kwargs`),
      };
    }
    checkName('module', item.module);
    if ('attr' in item) {
      checkName('attr', item.attr);
      labels.push(`${item.module}.${item.attr}`);
      return { op: 'attr', session: session.id, module: item.module, name: item.attr };
    }
    checkName('fn', item.fn);
    labels.push(`${item.module}.${item.fn}`);
    return {
      op: 'call',
      session: session.id,
      module: item.module,
      fn: item.fn,
      args: bridge.encodeArgs(item.args, blobs, `${path}.args`),
      kwargs: bridge.encodeKwargs(item.kwargs, blobs, `${path}.kwargs`),
    };
  });
  bridge.calls++;
  let reply: RawReply;
  try {
    reply = await bridge.pool.submit(
      session.id,
      { op: 'batch', session: session.id, items: wire },
      blobs.size > 0 ? blobs : undefined,
      {
        label: `batch of ${items.length}`,
        timeoutMs: options?.timeoutMs ?? bridge.defaultTimeoutMs,
        signal: options?.signal,
      },
    );
  } catch (error) {
    bridge.errors++;
    throw bridge.translate(error, `batch of ${items.length}`);
  }
  const outcomes = reply.result as readonly { ok: boolean; result?: unknown; error?: WireError }[];
  return outcomes.map((outcome, index): BatchResult => {
    if (outcome.ok) {
      try {
        return { ok: true, value: bridge.decode(session.id, outcome.result, reply.blob) };
      } catch (error) {
        return { ok: false, error: error as Error };
      }
    }
    bridge.errors++;
    return { ok: false, error: hostError(outcome.error as WireError, labels[index] ?? 'batch item') };
  });
}

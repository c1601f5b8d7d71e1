/**
 * Aborts `target` when `source` aborts, and returns the function that stops following. Unlike
 * `AbortSignal.any`, which on Node 20 leaves an entry in a long-lived source signal for every signal
 * made from it (a leak per call on a session's signal), the listener is removed when done.
 */
export function followSignal(target: AbortController, source: AbortSignal): () => void {
  if (source.aborted) {
    target.abort(source.reason);
    return () => {};
  }
  const onAbort = () => target.abort(source.reason);
  source.addEventListener('abort', onAbort, { once: true });
  return () => source.removeEventListener('abort', onAbort);
}

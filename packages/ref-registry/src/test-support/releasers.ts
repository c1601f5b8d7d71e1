import type { RefGoneReason } from '../errors';
import type { Ref } from '../ref';
import type { Releaser } from '../releaser';

export interface ReleaserCall {
  readonly operation: 'releaseSession' | 'releaseRefs';
  readonly sessionId: string;
  readonly refIds: readonly string[];
  readonly reason?: RefGoneReason;
}

export interface RecordingReleaser extends Releaser {
  readonly calls: ReleaserCall[];
  /** Makes the next `count` calls fail (reject with `error`). */
  failNext(count: number, error?: Error): void;
  /** Makes calls hang until `resume()` (returns how many were waiting). */
  hold(): void;
  resume(): number;
}

/** A releaser that records its calls; it can fail or hold calls on demand. */
export function recordingReleaser(name = 'recording'): RecordingReleaser {
  const calls: ReleaserCall[] = [];
  let failures = 0;
  let failure = new Error('remote side unavailable');
  let holding = false;
  let waiting: Array<() => void> = [];
  const settle = async (): Promise<void> => {
    if (holding) await new Promise<void>((resolve) => waiting.push(resolve));
    if (failures > 0) {
      failures -= 1;
      throw failure;
    }
  };
  return {
    name,
    contractVersion: 1,
    calls,
    releaseSession(sessionId: string, refs: readonly Ref[], reason: RefGoneReason) {
      calls.push({ operation: 'releaseSession', sessionId, refIds: refs.map((ref) => ref.id), reason });
      return settle();
    },
    releaseRefs(sessionId: string, refs: readonly Ref[]) {
      calls.push({ operation: 'releaseRefs', sessionId, refIds: refs.map((ref) => ref.id) });
      return settle();
    },
    failNext(count, error) {
      failures = count;
      if (error) failure = error;
    },
    hold() {
      holding = true;
    },
    resume() {
      holding = false;
      const resolvers = waiting;
      waiting = [];
      for (const resolve of resolvers) resolve();
      return resolvers.length;
    },
  };
}

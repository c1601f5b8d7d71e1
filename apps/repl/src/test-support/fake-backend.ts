/** A backend that records what the REPL layer asks and answers from a script (unit tests). */
import { createSessionManager, type Ref } from '@trestle/ref-registry';
import type { Backend, BackendEvent } from '../backend';
import { Emitter } from '../backend';

/** One recorded request. */
export interface Recorded {
  readonly op: 'call' | 'method' | 'attr' | 'dir' | 'release';
  readonly target: string;
  readonly name?: string;
  readonly args?: readonly unknown[];
  readonly kwargs?: Readonly<Record<string, unknown>> | undefined;
  readonly signal?: AbortSignal | undefined;
}

const refs = createSessionManager().registerSession('s_fake');

/** A ref of the fake session. */
export function fakeRef(typeName = 'Pattern', module = 're'): Ref {
  return refs.registerRef({ typeName, module });
}

/** A fake backend; `answer` decides what each request returns. */
export function fakeBackend(answer: (request: Recorded) => unknown = () => null): Backend & {
  readonly requests: Recorded[];
  emit(event: BackendEvent): void;
} {
  const events = new Emitter();
  const requests: Recorded[] = [];
  const record = async (request: Recorded) => {
    requests.push(request);
    return answer(request);
  };
  const name = (target: Ref | string) => (typeof target === 'string' ? target : `#${target.id}`);
  return {
    mode: 'embedded',
    description: 'fake',
    sessionId: 's_fake',
    requests,
    emit: (event) => events.emit(event),
    start: async () => {},
    call: (module, fn, args, kwargs, options) =>
      record({ op: 'call', target: module, name: fn, args, kwargs, signal: options?.signal }),
    method: (ref, method, args, kwargs, options) =>
      record({ op: 'method', target: name(ref), name: method, args, kwargs, signal: options?.signal }),
    attr: (target, attr, options) =>
      record({ op: 'attr', target: name(target), name: attr, signal: options?.signal }),
    dir: async (target, options) =>
      (await record({ op: 'dir', target: name(target), signal: options?.signal })) as string[],
    release: async (list) => {
      await record({ op: 'release', target: list.map(name).join(',') });
      return list.length;
    },
    session: async () => ({ id: 's_fake', tier: 'free', ageMs: 1, refs: 0, handles: 0, calls: {} }),
    refs: async () => [],
    budget: async () => ({
      tier: 'free',
      remaining: 10,
      capacity: 100,
      refillPerSec: 2,
      fullAfterMs: 45_000,
    }),
    handles: async () => [],
    end: async () => undefined,
    close: async () => {},
    on: (listener) => events.on(listener),
  };
}

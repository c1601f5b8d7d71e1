import { describeValue, HandlePoolError, HandlePoolErrorCode } from './errors';
import type { Discharger, DischargerPlugin } from './types';

/** A registered discharger, normalized from either form. */
export interface DischargerEntry {
  readonly name: string;
  readonly obligation: string;
  readonly discharge: Discharger;
}

export function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

export function toEntry(
  obligationOrPlugin: string | DischargerPlugin,
  discharger: Discharger | undefined,
): DischargerEntry {
  if (typeof obligationOrPlugin === 'object' && obligationOrPlugin !== null) {
    const plugin = obligationOrPlugin;
    if (!isNonEmptyString(plugin.obligation)) {
      throw invalid(
        `discharger plugin obligation must be a non-empty string, got ${describeValue(plugin.obligation)}`,
      );
    }
    if (typeof plugin.discharge !== 'function') {
      throw invalid(
        `discharger plugin for obligation ${describeValue(plugin.obligation)} has no discharge()`,
      );
    }
    const name = isNonEmptyString(plugin.name) ? plugin.name : plugin.obligation;
    // Bound so plugins may keep state on `this`.
    return { name, obligation: plugin.obligation, discharge: plugin.discharge.bind(plugin) };
  }
  if (!isNonEmptyString(obligationOrPlugin)) {
    throw invalid(
      `discharger obligation must be a non-empty string, got ${describeValue(obligationOrPlugin)}`,
    );
  }
  if (typeof discharger !== 'function') {
    throw invalid(
      `discharger for obligation ${describeValue(obligationOrPlugin)} must be a function, got ${describeValue(discharger)}`,
    );
  }
  return {
    name: isNonEmptyString(discharger.name) ? discharger.name : obligationOrPlugin,
    obligation: obligationOrPlugin,
    discharge: discharger,
  };
}

/** Dischargers keyed by obligation. One per obligation; unregistering only removes its own entry. */
export class DischargerRegistry {
  readonly #entries = new Map<string, DischargerEntry>();

  get size(): number {
    return this.#entries.size;
  }

  get(obligation: string): DischargerEntry | undefined {
    return this.#entries.get(obligation);
  }

  register(entry: DischargerEntry): () => void {
    const existing = this.#entries.get(entry.obligation);
    if (existing !== undefined) {
      throw new HandlePoolError(
        HandlePoolErrorCode.DuplicateDischarger,
        `obligation ${describeValue(entry.obligation)} already has discharger ${describeValue(existing.name)}; ` +
          `unregister it before registering ${describeValue(entry.name)}`,
      );
    }
    this.#entries.set(entry.obligation, entry);
    return () => {
      if (this.#entries.get(entry.obligation) === entry) this.#entries.delete(entry.obligation);
    };
  }
}

function invalid(message: string): HandlePoolError {
  return new HandlePoolError(HandlePoolErrorCode.InvalidInput, message);
}

import { z } from 'zod';
import { InvalidRefError } from './errors';

const brand = Symbol.for('trestle.ref');

/** The one wire-format version this package speaks. */
export const REF_SCHEMA_VERSION = 1;

/**
 * A reference to an object that lives elsewhere (a Python object in a worker), owned by a session.
 * Refs are frozen; create them with {@link createRef} or {@link decodeRef}.
 */
export interface Ref {
  readonly id: string;
  readonly sessionId: string;
  /** The remote type's name, e.g. `Pattern`. */
  readonly typeName: string;
  /** The module it came from, e.g. `re`. */
  readonly module: string;
  readonly library?: string;
  /** The worker pool the ref is affine to. */
  readonly poolName?: string;
  readonly schema: typeof REF_SCHEMA_VERSION;
}

/** The tagged-JSON wire form of a ref. */
export interface RefWire {
  readonly __type__: 'ref';
  readonly __schema__: typeof REF_SCHEMA_VERSION;
  readonly id: string;
  readonly session_id: string;
  readonly type_name: string;
  readonly python_module: string;
  readonly library?: string | null;
  readonly pool_name?: string | null;
}

/** zod schema of the wire form (validation at the boundary). Extra keys are ignored. */
export const RefWireSchema = z.object({
  __type__: z.literal('ref'),
  __schema__: z.literal(REF_SCHEMA_VERSION),
  id: z.string().min(1),
  session_id: z.string().min(1),
  type_name: z.string().min(1),
  python_module: z.string(),
  library: z.string().nullish(),
  pool_name: z.string().nullish(),
});

/** zod schema of the host-side `Ref` fields. */
export const RefSchema = z.object({
  id: z.string().min(1),
  sessionId: z.string().min(1),
  typeName: z.string().min(1),
  module: z.string(),
  library: z.string().optional(),
  poolName: z.string().optional(),
  schema: z.literal(REF_SCHEMA_VERSION).default(REF_SCHEMA_VERSION),
});

/** The fields of {@link createRef}. */
export type RefInit = z.input<typeof RefSchema>;

/** True for refs made by {@link createRef} / {@link decodeRef} (also across duplicate installs). */
export function isRef(value: unknown): value is Ref {
  return typeof value === 'object' && value !== null && brand in value;
}

/** True for anything tagged as a ref on the wire (`__type__: "ref"`), valid or not. */
export function isRefWire(value: unknown): value is { readonly __type__: 'ref' } {
  return typeof value === 'object' && value !== null && (value as { __type__?: unknown }).__type__ === 'ref';
}

/**
 * Refs are instances of this class: one stable object shape, and the brand on the prototype, so a
 * spread copy (`{ ...ref }`) is a plain object, not a ref, while `isRef` works across installs.
 */
class RefRecord implements Ref {
  readonly id: string;
  readonly sessionId: string;
  readonly typeName: string;
  readonly module: string;
  declare readonly library?: string;
  declare readonly poolName?: string;
  readonly schema = REF_SCHEMA_VERSION;
  constructor(
    id: string,
    sessionId: string,
    typeName: string,
    module: string,
    library: string | undefined,
    poolName: string | undefined,
  ) {
    this.id = id;
    this.sessionId = sessionId;
    this.typeName = typeName;
    this.module = module;
    if (library !== undefined) (this as { library?: string }).library = library;
    if (poolName !== undefined) (this as { poolName?: string }).poolName = poolName;
  }
}
Object.defineProperty(RefRecord.prototype, brand, { value: true });

function freeze(fields: {
  id: string;
  sessionId: string;
  typeName: string;
  module: string;
  library?: string | undefined;
  poolName?: string | undefined;
}): Ref {
  return Object.freeze(
    new RefRecord(
      fields.id,
      fields.sessionId,
      fields.typeName,
      fields.module,
      fields.library,
      fields.poolName,
    ),
  );
}

/**
 * Creates a ref from its fields.
 * @example
 * ```ts
 * const ref = createRef({ id: 'ab12', sessionId: 's1', typeName: 'Pattern', module: 're' });
 * ```
 * @throws InvalidRefError `REF_INVALID` with `reason` naming the first missing or malformed field.
 */
export function createRef(fields: RefInit): Ref {
  // Fast path: plain checks; zod runs only to explain a failure (it costs a microsecond a ref).
  if (
    typeof fields === 'object' &&
    fields !== null &&
    isText(fields.id) &&
    isText(fields.sessionId) &&
    isText(fields.typeName) &&
    typeof fields.module === 'string' &&
    (fields.library === undefined || typeof fields.library === 'string') &&
    (fields.poolName === undefined || typeof fields.poolName === 'string') &&
    (fields.schema === undefined || fields.schema === REF_SCHEMA_VERSION)
  ) {
    return freeze(fields as z.output<typeof RefSchema>);
  }
  const parsed = RefSchema.safeParse(fields);
  if (!parsed.success) {
    const record = (typeof fields === 'object' && fields !== null ? fields : {}) as Record<string, unknown>;
    const id = typeof record.id === 'string' ? record.id : undefined;
    const sessionId = typeof record.sessionId === 'string' ? record.sessionId : undefined;
    const field = String(parsed.error.issues[0]?.path[0] ?? 'value');
    const reason =
      field === 'id'
        ? 'missing_id'
        : field === 'sessionId'
          ? 'missing_session'
          : field === 'typeName'
            ? 'missing_type_name'
            : 'invalid_field';
    throw new InvalidRefError(
      reason,
      `${field}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
      id,
      sessionId,
    );
  }
  return freeze(parsed.data);
}

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

/** The wire form of a ref. Never a string: always the tagged object. */
export function encodeRef(ref: Ref): RefWire {
  const wire: { -readonly [K in keyof RefWire]: RefWire[K] } = {
    __type__: 'ref',
    __schema__: REF_SCHEMA_VERSION,
    id: ref.id,
    session_id: ref.sessionId,
    type_name: ref.typeName,
    python_module: ref.module,
  };
  if (ref.library !== undefined) wire.library = ref.library;
  if (ref.poolName !== undefined) wire.pool_name = ref.poolName;
  return wire;
}

/**
 * Validates a wire payload and returns the ref.
 * @throws InvalidRefError with `reason`: `not_an_object`, `missing_type` (no `__type__`), `not_a_ref`,
 *   `unknown_schema`, `missing_id`, `missing_session`, `missing_type_name` or `invalid_field`.
 */
export function decodeRef(input: unknown): Ref {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidRefError('not_an_object', `expected an object, got ${describe(input)}`);
  }
  const record = input as Record<string, unknown>;
  const id = typeof record.id === 'string' ? record.id : undefined;
  const sessionId = typeof record.session_id === 'string' ? record.session_id : undefined;
  if (!('__type__' in record))
    throw new InvalidRefError('missing_type', "missing '__type__' field", id, sessionId);
  if (record.__type__ !== 'ref') {
    throw new InvalidRefError(
      'not_a_ref',
      `'__type__' is ${describe(record.__type__)}, not "ref"`,
      id,
      sessionId,
    );
  }
  if (record.__schema__ !== REF_SCHEMA_VERSION) {
    throw new InvalidRefError(
      'unknown_schema',
      `'__schema__' ${describe(record.__schema__)} is not supported (this side speaks ${REF_SCHEMA_VERSION})`,
      id,
      sessionId,
    );
  }
  if (!id) throw new InvalidRefError('missing_id', "missing 'id' field", undefined, sessionId);
  if (!sessionId) throw new InvalidRefError('missing_session', "missing 'session_id' field", id);
  if (typeof record.type_name !== 'string' || record.type_name.length === 0) {
    throw new InvalidRefError('missing_type_name', "missing 'type_name' field", id, sessionId);
  }
  const parsed = RefWireSchema.safeParse(record);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidRefError('invalid_field', `${String(issue?.path[0])}: ${issue?.message}`, id, sessionId);
  }
  const wire = parsed.data;
  return freeze({
    id: wire.id,
    sessionId: wire.session_id,
    typeName: wire.type_name,
    module: wire.python_module,
    library: wire.library ?? undefined,
    poolName: wire.pool_name ?? undefined,
  });
}

/** A short description of a value for error messages (never the whole value). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object')
    return `an object (${(value as object).constructor?.name ?? 'no prototype'})`;
  if (typeof value === 'function') return `a function (${value.name || 'anonymous'})`;
  return `${typeof value} ${String(value)}`;
}

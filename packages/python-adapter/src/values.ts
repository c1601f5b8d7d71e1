import { type InspectOptionsStylized, inspect } from 'node:util';

/**
 * Host-side forms of the Python values that have no JavaScript equivalent: `tuple`, `frozenset`,
 * `complex`, `datetime` and `date`. Each class carries a `Symbol.for` brand, so `isInstance` works across
 * duplicate installs of this package (where `instanceof` does not), and renders like Python in
 * `util.inspect` / `console.log`.
 */

const tupleBrand = Symbol.for('trestle.python-adapter.PyTuple');
const frozenSetBrand = Symbol.for('trestle.python-adapter.PyFrozenSet');
const complexBrand = Symbol.for('trestle.python-adapter.PyComplex');
const dateTimeBrand = Symbol.for('trestle.python-adapter.PyDateTime');
const dateBrand = Symbol.for('trestle.python-adapter.PyDate');

const hasBrand = (value: unknown, brand: symbol): boolean =>
  (typeof value === 'object' || typeof value === 'function') && value !== null && brand in value;

/** `options` for an item one level down, or `undefined` when the depth is exhausted. */
function inner(options: InspectOptionsStylized): InspectOptionsStylized | undefined {
  if (options.depth === null || options.depth === undefined) return options;
  if (options.depth < 0) return undefined;
  return { ...options, depth: options.depth - 1 };
}

/**
 * A Python `tuple`: an array, frozen after construction. Array methods that build a new array (`map`,
 * `filter`, `slice`, `concat`, ...) return plain arrays (`Symbol.species` is `Array`); the mutators
 * (`push`, `sort`, index assignment, ...) throw a `TypeError`. Not meant to be subclassed.
 * @example
 * ```ts
 * const point = tuple(1, 2); // Python (1, 2)
 * point.map((x) => x * 2); // [2, 4], a plain array
 * isTuple(point); // true
 * ```
 */
export class PyTuple<T = unknown> extends Array<T> {
  /**
   * @param items the tuple's items (`new PyTuple([1])` is the 1-tuple `(1,)`).
   * @throws TypeError when `items` is neither iterable nor array-like.
   */
  constructor(items: Iterable<T> | ArrayLike<T> = []) {
    super();
    if (typeof items !== 'object' || items === null) {
      throw new TypeError('PyTuple takes an iterable of items: use tuple(...items)');
    }
    const list: ArrayLike<T> = Array.isArray(items) ? items : Array.from(items);
    for (let i = 0; i < list.length; i++) this[i] = list[i] as T;
    Object.freeze(this);
  }

  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  /** Like `Array.from`, but builds a tuple. */
  static override from<T>(items: Iterable<T> | ArrayLike<T>): PyTuple<T>;
  static override from<T, U>(
    items: Iterable<T> | ArrayLike<T>,
    map: (value: T, index: number) => U,
    thisArg?: unknown,
  ): PyTuple<U>;
  static override from<T, U>(
    items: Iterable<T> | ArrayLike<T>,
    map?: (value: T, index: number) => U,
    thisArg?: unknown,
  ): PyTuple<T | U> {
    return new PyTuple<T | U>(map ? Array.from(items, map, thisArg) : items);
  }

  /** Like `Array.of`, but builds a tuple. */
  static override of<T>(...items: T[]): PyTuple<T> {
    return new PyTuple(items);
  }

  /** True for tuples of this package, also across duplicate installs. */
  static isInstance(value: unknown): value is PyTuple {
    return hasBrand(value, tupleBrand);
  }

  /** Renders like Python: `(1, 'a')`, `(1,)`, `()`. */
  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    const next = inner(options);
    if (next === undefined) return options.stylize('(…)', 'special');
    const items = Array.prototype.map.call(this, (item) => inspect(item, next)) as string[];
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
  }
}
Object.defineProperty(PyTuple.prototype, tupleBrand, { value: true });

/**
 * Builds a {@link PyTuple}.
 * @example
 * ```ts
 * tuple(1, 2); // Python (1, 2)
 * new Map([[tuple(1, 2), 'a']]); // Python {(1, 2): 'a'}: a dict with a tuple key
 * ```
 */
export function tuple<T extends readonly unknown[]>(...items: T): PyTuple<T[number]> {
  return new PyTuple<T[number]>(items);
}

/** True for a {@link PyTuple} (also one made by another install of this package). */
export function isTuple(value: unknown): value is PyTuple {
  return hasBrand(value, tupleBrand);
}

/**
 * A Python `frozenset`: a `Set` whose `add`, `delete` and `clear` throw a `TypeError`. Items are
 * compared by identity, as in any `Set` (two equal tuples are two items).
 * @example
 * ```ts
 * const tags = new PyFrozenSet(['a', 'b']);
 * tags.has('a'); // true
 * tags.add('c'); // TypeError
 * ```
 */
export class PyFrozenSet<T = unknown> extends Set<T> {
  constructor(items?: Iterable<T> | null) {
    super();
    if (items !== undefined && items !== null) for (const item of items) super.add(item);
    Object.freeze(this);
  }

  static override get [Symbol.species](): SetConstructor {
    return Set;
  }

  /** @throws TypeError always: a frozenset cannot change. */
  override add(_value: T): never {
    throw new TypeError('cannot add to a PyFrozenSet (a Python frozenset is immutable)');
  }

  /** @throws TypeError always: a frozenset cannot change. */
  override delete(_value: T): never {
    throw new TypeError('cannot delete from a PyFrozenSet (a Python frozenset is immutable)');
  }

  /** @throws TypeError always: a frozenset cannot change. */
  override clear(): never {
    throw new TypeError('cannot clear a PyFrozenSet (a Python frozenset is immutable)');
  }

  /** True for frozensets of this package, also across duplicate installs. */
  static isInstance(value: unknown): value is PyFrozenSet {
    return hasBrand(value, frozenSetBrand);
  }

  /** Renders like Python: `frozenset({1, 2})`, `frozenset()`. */
  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    const next = inner(options);
    if (next === undefined) return options.stylize('frozenset({…})', 'special');
    if (this.size === 0) return 'frozenset()';
    const items: string[] = [];
    for (const item of this) items.push(inspect(item, next));
    return `frozenset({${items.join(', ')}})`;
  }
}
Object.defineProperty(PyFrozenSet.prototype, frozenSetBrand, { value: true });

/** A float as Python's `repr` writes it inside a complex: `1`, `1.5`, `1e+16`, `1e-05`, `nan`, `-inf`. */
function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Number.POSITIVE_INFINITY) return 'inf';
  if (x === Number.NEGATIVE_INFINITY) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const magnitude = Math.abs(x);
  if (magnitude >= 1e16 || magnitude < 1e-4) {
    return x.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  }
  return String(x);
}

/**
 * A Python `complex`. Both parts are JS numbers (`NaN`, `±Infinity` and `-0` included).
 * @example
 * ```ts
 * String(new PyComplex(1, -2)); // '(1-2j)'
 * ```
 */
export class PyComplex {
  readonly re: number;
  readonly im: number;
  constructor(re: number, im: number) {
    if (typeof re !== 'number' || typeof im !== 'number') {
      throw new TypeError('PyComplex takes two numbers (re, im)');
    }
    this.re = re;
    this.im = im;
    Object.freeze(this);
  }

  /** True for complex numbers of this package, also across duplicate installs. */
  static isInstance(value: unknown): value is PyComplex {
    return hasBrand(value, complexBrand);
  }

  /** Python's `repr`: `(1+2j)`, `(1-0j)`, `2j`, `(nan+infj)`. */
  toString(): string {
    const im = pyFloat(this.im);
    if (this.re === 0 && !Object.is(this.re, -0)) return `${im}j`;
    return `(${pyFloat(this.re)}${im.startsWith('-') ? im : `+${im}`}j)`;
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    return options.stylize(this.toString(), 'number');
  }
}
Object.defineProperty(PyComplex.prototype, complexBrand, { value: true });

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(?:(Z)|([+-])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Milliseconds since the epoch of a proleptic Gregorian UTC time (years 0-99 included). */
function utcMillis(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
  ms = 0,
): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime();
}

/** A 1-6 digit fraction of a second as (truncated) milliseconds. */
const fractionMillis = (digits: string | undefined): number =>
  digits === undefined ? 0 : Math.trunc(Number(`0.${digits}`) * 1000 + 1e-9);

/**
 * A Python `datetime`, kept as its `isoformat()` text (microseconds and the offset are not lost).
 * Aware datetimes have an offset (`+00:00`, `-05:00`); naive ones have none.
 * @example
 * ```ts
 * const when = new PyDateTime('2024-01-02T03:04:05.123456+01:00');
 * when.toDate().toISOString(); // '2024-01-02T02:04:05.123Z'
 * ```
 */
export class PyDateTime {
  /** The `isoformat()` text, e.g. `2024-01-02T03:04:05.123456+00:00`. */
  readonly iso: string;
  /** @throws TypeError when `iso` is not an ISO 8601 datetime as Python writes it. */
  constructor(iso: string) {
    if (typeof iso !== 'string' || !DATE_TIME.test(iso)) {
      throw new TypeError('PyDateTime takes an ISO 8601 datetime (YYYY-MM-DDTHH:MM[:SS[.ffffff]][±HH:MM])');
    }
    this.iso = iso;
    Object.freeze(this);
  }

  /** The datetime of a `Date`, in UTC (`+00:00`), with millisecond precision. */
  static fromDate(date: Date): PyDateTime {
    return new PyDateTime(dateToIso(date));
  }

  /** True for datetimes of this package, also across duplicate installs. */
  static isInstance(value: unknown): value is PyDateTime {
    return hasBrand(value, dateTimeBrand);
  }

  /** True when the datetime has no offset (a Python naive datetime). */
  get naive(): boolean {
    const match = DATE_TIME.exec(this.iso);
    return match?.[8] === undefined && match?.[9] === undefined;
  }

  /**
   * The instant as a `Date`. A naive datetime is **treated as UTC** (Python gives it no zone; the host
   * cannot know the worker's local zone). Microseconds are truncated to milliseconds.
   */
  toDate(): Date {
    const m = DATE_TIME.exec(this.iso) as RegExpExecArray;
    const local = utcMillis(
      Number(m[1]),
      Number(m[2]),
      Number(m[3]),
      Number(m[4]),
      Number(m[5]),
      Number(m[6] ?? 0),
      fractionMillis(m[7]),
    );
    if (m[9] === undefined) return new Date(local);
    const offset =
      (Number(m[10]) * 3600 + Number(m[11]) * 60 + Number(m[12] ?? 0)) * 1000 + fractionMillis(m[13]);
    return new Date(m[9] === '-' ? local + offset : local - offset);
  }

  toString(): string {
    return this.iso;
  }

  /** `JSON.stringify` writes the ISO text. */
  toJSON(): string {
    return this.iso;
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    return `datetime(${options.stylize(`'${this.iso}'`, 'date')})`;
  }
}
Object.defineProperty(PyDateTime.prototype, dateTimeBrand, { value: true });

/**
 * A Python `date`, kept as its `isoformat()` text.
 * @example
 * ```ts
 * new PyDate('2024-01-02').toDate().toISOString(); // '2024-01-02T00:00:00.000Z'
 * ```
 */
export class PyDate {
  /** The `isoformat()` text, `YYYY-MM-DD`. */
  readonly iso: string;
  /** @throws TypeError when `iso` is not `YYYY-MM-DD`. */
  constructor(iso: string) {
    if (typeof iso !== 'string' || !DATE.test(iso))
      throw new TypeError('PyDate takes an ISO date (YYYY-MM-DD)');
    this.iso = iso;
    Object.freeze(this);
  }

  /** True for dates of this package, also across duplicate installs. */
  static isInstance(value: unknown): value is PyDate {
    return hasBrand(value, dateBrand);
  }

  /** Midnight UTC of the date. */
  toDate(): Date {
    const m = DATE.exec(this.iso) as RegExpExecArray;
    return new Date(utcMillis(Number(m[1]), Number(m[2]), Number(m[3])));
  }

  toString(): string {
    return this.iso;
  }

  /** `JSON.stringify` writes the ISO text. */
  toJSON(): string {
    return this.iso;
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    return `date(${options.stylize(`'${this.iso}'`, 'date')})`;
  }
}
Object.defineProperty(PyDate.prototype, dateBrand, { value: true });

/**
 * The ISO text of a `Date` in UTC with an explicit `+00:00` offset (what Python's `fromisoformat` reads),
 * e.g. `2024-01-02T03:04:05.123+00:00`.
 * @throws RangeError for an invalid `Date` or one outside Python's years 1-9999.
 */
export function dateToIso(date: Date): string {
  const time = date.getTime();
  if (Number.isNaN(time)) throw new RangeError('invalid Date');
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999)
    throw new RangeError(`year ${year} is outside Python's datetime range (1-9999)`);
  return `${date.toISOString().slice(0, -1)}+00:00`;
}

/** The dot-commands: `.session`, `.refs`, `.budget`, `.handles`, `.release <name>`, `.end`, `.help`. */
import type { REPLServer } from 'node:repl';
import type { Ref } from '@trestle/ref-registry';
import type { EndSummary } from './backend';
import { formatBudget, formatDuration, formatHandles, formatReport, formatSession, table } from './format';
import { formatError } from './format-error';
import { refOf, releaseValues } from './proxies';
import { type ReplRuntime, refLabel, shortRefId, typeLabel } from './runtime';
import type { Style } from './style';

/** What the commands need from the REPL. */
export interface CommandContext {
  readonly runtime: ReplRuntime;
  readonly style: Style;
  /** Writes a block of text (a newline is added). */
  readonly write: (text: string) => void;
  /** Looks up a name or identifier path in the REPL's scope. */
  readonly evaluate: (expression: string) => unknown;
  /** Ref id → names in scope that hold it. */
  readonly namesByRef: () => Map<string, string[]>;
}

/** The `.help` text. */
export function helpText(style: Style): string {
  const section = (title: string, rows: readonly (readonly [string, string])[]) => {
    const width = Math.max(...rows.map(([left]) => left.length));
    return [
      style.bold(title),
      ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${style.dim(right)}`),
    ];
  };
  return [
    ...section('In scope', [
      ['py', 'the bridge: py.<module>, py.import(name), py.kw, py.tuple, py.release, py.dir'],
      ['await py.math.sqrt(16)', 'call a function: calling a name runs Python, await the result'],
      ['await py.math.pi', 'read an attribute: awaiting a name reads it'],
      ["m = await py.import('re')", 'import a module (checked), then m.compile(...)'],
      ["p = await py.re.compile('\\\\d+')", 'objects stay in Python and come back as refs'],
      ["await p.match('12')", 'call a method; p.$release() releases the object now'],
      ['py.json.dumps(x, kw({ indent: 2 }))', 'keyword arguments: a last kw({...})'],
    ]),
    '',
    ...section('Commands', [
      ['.session', 'the session: id, tier, age, refs, handles, calls'],
      ['.refs', 'live refs with their types, names and ages'],
      ['.budget', 'the budget: remaining, refill, a bar'],
      ['.handles', 'open handles (Python objects that hold OS resources)'],
      ['.release <name>', 'release the ref held by a name (or #ab12)'],
      ['.end', 'end the session (its report) and start a new one'],
      ['.editor .load .save .clear .break .exit', "node:repl's own"],
    ]),
    '',
    ...section('Keys', [
      ['Tab', 'complete names (Python dir() after "x.")'],
      ['Ctrl-C', 'cancel the running call; at an empty prompt, twice to exit'],
      ['Ctrl-D', 'exit (the session ends and its report is shown)'],
      ['Up / Down', 'history'],
    ]),
  ].join('\n');
}

/** Registers the dot-commands on `server`. */
export function defineCommands(server: REPLServer, context: CommandContext): void {
  const { runtime, style, write } = context;
  const { backend } = runtime;
  const run = (task: () => Promise<string>) => {
    task()
      .then(
        (text) => write(text),
        (error: unknown) => write(formatError(error, style)),
      )
      .finally(() => server.displayPrompt());
  };

  server.defineCommand('session', {
    help: 'Show the session: id, tier, age, refs, handles, calls',
    action: () =>
      run(async () => {
        const view = await backend.session();
        return formatSession(view, runtime.labels.label(view.id), backend.description, style);
      }),
  });

  server.defineCommand('refs', {
    help: 'List the live refs with their types, names and ages',
    action: () =>
      run(async () => {
        const refs = await backend.refs();
        const session = backend.sessionId;
        const where = session === undefined ? '' : ` in session ${runtime.labels.label(session)}`;
        if (refs.length === 0) return style.dim(`no live refs${where}`);
        const names = context.namesByRef();
        for (const view of refs) runtime.known.set(view.ref.id, view.ref);
        return [
          `${refs.length} live ref${refs.length === 1 ? '' : 's'}${where}`,
          table(
            ['ref', 'type', 'name', 'age'],
            refs.map((view) => [
              `#${shortRefId(view.ref.id)}`,
              typeLabel(view.ref),
              (names.get(view.ref.id) ?? []).join(', '),
              formatDuration(view.ageMs),
            ]),
            style,
          ),
        ].join('\n');
      }),
  });

  server.defineCommand('budget', {
    help: 'Show the budget: remaining, refill rate, a bar',
    action: () => run(async () => formatBudget(await backend.budget(), style)),
  });

  server.defineCommand('handles', {
    help: 'List open handles (Python objects that hold OS resources)',
    action: () => run(async () => formatHandles(await backend.handles(), style)),
  });

  server.defineCommand('release', {
    help: 'Release the ref held by a name (.release p) or with a short id (.release #ab12)',
    action: (rest: string) =>
      run(async () => {
        const name = rest.trim();
        if (name === '') return style.yellow('usage: .release <name> | .release #ab12');
        const ref = findRef(context, name);
        const released = await releaseValues(runtime, [ref]);
        const label = refLabel(runtime, ref).replace(' released>', '>');
        return released > 0 ? `released ${name} ${label}` : style.dim(`${name} ${label} was already gone`);
      }),
  });

  server.defineCommand('end', {
    help: 'End the session (its report is shown) and start a new one',
    action: () =>
      run(async () => {
        const before = backend.sessionId;
        const summary = await backend.end({ reopen: true });
        if (before !== undefined) markGone(runtime, before);
        const next = backend.sessionId;
        return [
          summary === undefined ? style.dim('no session to end') : reportText(runtime, summary, style),
          next === undefined ? '' : `new session ${style.bold(runtime.labels.label(next))}`,
        ]
          .filter(Boolean)
          .join('\n');
      }),
  });

  server.defineCommand('help', {
    help: 'Show help',
    action: () => {
      write(helpText(style));
      server.displayPrompt();
    },
  });
}

/** The report of an ended session, with its label. */
export function reportText(runtime: ReplRuntime, summary: EndSummary, style: Style): string {
  return formatReport(summary, runtime.labels.label(summary.sessionId), style);
}

/** Refs of an ended session print as released. */
function markGone(runtime: ReplRuntime, sessionId: string): void {
  for (const ref of runtime.known.values()) if (ref.sessionId === sessionId) runtime.released.add(ref.id);
}

/** The ref named by `name`: a short id (`#ab12`) or a name / identifier path in scope. */
function findRef(context: CommandContext, name: string): Ref {
  const { runtime } = context;
  if (name.startsWith('#')) {
    const short = name.slice(1).toLowerCase();
    const matches = [...runtime.known.values()].filter((ref) => shortRefId(ref.id) === short);
    if (matches.length === 1 && matches[0] !== undefined) return matches[0];
    throw new Error(matches.length === 0 ? `no ref ${name} (see .refs)` : `${name} is ambiguous`);
  }
  if (!/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(name)) {
    throw new Error(`.release takes a name or a #id, got ${JSON.stringify(name)}`);
  }
  let value: unknown;
  try {
    value = context.evaluate(name);
  } catch {
    throw new Error(`${name} is not defined`);
  }
  const ref = refOf(value);
  if (ref === undefined) throw new Error(`${name} does not hold a Python object`);
  return ref;
}

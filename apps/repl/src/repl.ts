/**
 * The REPL on node:repl: top-level await, history, multi-line input, colours; `py` and `kw` in scope;
 * Python completion; dot-commands; Ctrl-C cancels the evaluation's Python calls; errors from Python
 * shown as Python tracebacks; the session ends (with its report) on exit.
 *
 * Two ways to run: interactive (a terminal) and script (`--eval` or piped stdin: lines are fed one at a
 * time, each after the previous one finished, and the first error stops the run with exit code 1).
 */
import type { EventEmitter } from 'node:events';
import { clearLine, cursorTo } from 'node:readline';
import repl, { type REPLServer } from 'node:repl';
import { PassThrough } from 'node:stream';
import { inspect, types } from 'node:util';
import vm from 'node:vm';
import type { Backend, BackendEvent, EndSummary } from './backend';
import { defineCommands, reportText } from './commands';
import { type Completer, createCompleter } from './completer';
import { CancelledError, messageOf } from './errors';
import { formatError, isBridgeError } from './format-error';
import { createPy, kw } from './proxies';
import { createRuntime, type ReplRuntime, refLabel } from './runtime';
import { ScopeNames } from './scope-names';
import { createStyle, type Style } from './style';
import { createWriter } from './writer';

/** The prompt of the interactive REPL. */
export const PROMPT = 'py> ';

/** How long ending the session may take on exit (remote: while reconnecting). */
const END_TIMEOUT_MS = 5_000;

/** Options of {@link runRepl}. */
export interface RunReplOptions {
  /** A started backend (its first session open). */
  readonly backend: Backend;
  readonly output: NodeJS.WritableStream;
  readonly errorOutput: NodeJS.WritableStream;
  /** Colours on `output` / `errorOutput`. */
  readonly colors: boolean;
  readonly errorColors: boolean;
  /** Interactive: the terminal to read keys from. Script: the lines to run. */
  readonly source:
    | {
        readonly kind: 'terminal';
        readonly input: NodeJS.ReadableStream;
        /** Line editing, raw keys and colours (input and output are TTYs). */
        readonly terminal: boolean;
        readonly historyPath?: string | undefined;
      }
    | { readonly kind: 'script'; readonly lines: AsyncIterable<string>; readonly report?: boolean };
}

/** Runs the REPL until it exits; resolves with the process exit code. */
export async function runRepl(options: RunReplOptions): Promise<number> {
  const { backend, output, errorOutput, source } = options;
  const interactive = source.kind === 'terminal';
  const terminal = source.kind === 'terminal' && source.terminal;
  const style = createStyle(options.colors);
  const errorStyle = createStyle(options.errorColors);
  const runtime = createRuntime(backend);
  const scopeNames = new ScopeNames();
  const scriptInput = new PassThrough();
  let current: AbortController | undefined;
  let exitCode = 0;
  let closed = false;

  if (interactive) output.write(`${banner(runtime, style)}\n`);
  const server = repl.start({
    prompt: interactive ? PROMPT : '',
    input: interactive ? source.input : scriptInput,
    output,
    terminal,
    useColors: options.colors,
    breakEvalOnSigint: interactive,
    preview: false,
    ignoreUndefined: true,
    writer: createWriter(options.colors),
  });
  const evaluate = (expression: string): unknown => vm.runInContext(expression, server.context);
  const install = (context: vm.Context) => {
    context.py = createPy(runtime);
    context.kw = kw;
  };
  install(server.context);
  server.on('reset', install);

  const write = (text: string) => output.write(`${text}\n`);
  // Whether the prompt is on screen, waiting for input (then messages go above it, and it is redrawn).
  let atPrompt = false;
  if (interactive) {
    const displayPrompt = server.displayPrompt.bind(server);
    server.displayPrompt = (preserveCursor?: boolean) => {
      displayPrompt(preserveCursor);
      atPrompt = true;
    };
    server.prependListener('line', () => {
      atPrompt = false;
    });
  }
  /** A message outside the flow of input (reconnects, Python output): keeps the prompt and typed line. */
  const notify = (render: (style: Style) => string) => {
    if (!interactive) {
      errorOutput.write(`${render(errorStyle)}\n`);
      return;
    }
    if (!atPrompt || closed) {
      write(render(style));
      return;
    }
    if (terminal) {
      clearLine(output, 0);
      cursorTo(output, 0);
    } else {
      output.write('\n');
    }
    write(render(style));
    server.displayPrompt(true);
  };
  const unsubscribe = backend.on((event) =>
    onBackendEvent(event, runtime, scopeNames, evaluate, notify, server, output, errorOutput, interactive),
  );

  // Every evaluation gets an AbortController, visible to the Python calls it starts (AsyncLocalStorage).
  let incomplete = false;
  const originalEval = server.eval;
  const wrappedEval: repl.REPLEval = function (this: REPLServer, code, context, file, callback) {
    scopeNames.note(code);
    const controller = new AbortController();
    current = controller;
    runtime.evaluation.run(controller, () =>
      originalEval.call(this, code, context, file, (...args: [Error | null, unknown]) => {
        if (current === controller) current = undefined;
        incomplete = args[0] instanceof repl.Recoverable;
        callback(...args);
      }),
    );
  };
  (server as unknown as { eval: repl.REPLEval }).eval = wrappedEval;

  const fallback = server.completer.bind(server) as Completer;
  (server as unknown as { completer: Completer }).completer = createCompleter({
    runtime,
    evaluate,
    fallback,
  });

  defineCommands(server, {
    runtime,
    style,
    write,
    evaluate,
    namesByRef: () => scopeNames.byRef(evaluate, Object.keys(server.context)),
  });

  // Errors: node:repl reports every failed evaluation on its domain. Python and bridge errors are shown
  // here (a Python traceback, `cancelled`); other errors keep node:repl's `Uncaught ...`.
  let stopScript: (() => void) | undefined;
  interceptErrors(server, (error) => {
    current = undefined;
    incomplete = false;
    if (!interactive) {
      exitCode = 1;
      errorOutput.write(`${scriptErrorText(error, errorStyle)}\n`);
      stopScript?.();
      return true;
    }
    if (!isBridgeError(error)) return false;
    if (atPrompt) {
      // A promise nobody awaited failed while the user types: say so above the prompt, keep their input.
      notify((s) => formatError(error, s));
      return true;
    }
    write(formatError(error, style));
    server.clearBufferedCommand();
    const lines = (server as unknown as { lines?: { level?: unknown[] } }).lines;
    if (lines !== undefined) lines.level = [];
    server.displayPrompt();
    return true;
  });

  // Ctrl-C while an evaluation runs: node:repl ends the evaluation (breakEvalOnSigint); this aborts the
  // Python calls it started. At an empty prompt node:repl's own handling applies (twice exits).
  server.on('SIGINT', () => {
    if (current !== undefined && !current.signal.aborted) current.abort(new CancelledError());
  });

  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));

  // A rejection outside node:repl's domain (a stray promise) must not end the REPL.
  const onRejection = (reason: unknown) =>
    notify((s) =>
      isBridgeError(reason) ? formatError(reason, s) : s.red(`Uncaught (in promise) ${inspect(reason)}`),
    );
  process.on('unhandledRejection', onRejection);
  void exited.then(() => process.off('unhandledRejection', onRejection));

  if (interactive) {
    if (!terminal) {
      // Without raw keys readline never sees Ctrl-C: hand the process signal to node:repl.
      const onSigint = () => server.emit('SIGINT');
      process.on('SIGINT', onSigint);
      void exited.then(() => process.off('SIGINT', onSigint));
    }
    if (source.historyPath !== undefined && terminal) {
      const path = source.historyPath;
      await new Promise<void>((resolve) => {
        server.setupHistory(path, (error) => {
          if (error) notify((s) => s.yellow(`history disabled: ${messageOf(error)}`));
          resolve();
        });
      });
    }
  } else {
    const onSigint = () => {
      current?.abort(new CancelledError());
      exitCode = 130;
      stopScript?.();
    };
    process.on('SIGINT', onSigint);
    void exited.then(() => process.off('SIGINT', onSigint));
    stopScript = feedScript(server, scriptInput, source.lines, {
      incomplete: () => incomplete,
      fail: (message) => {
        exitCode = 1;
        errorOutput.write(`${errorStyle.red(message)}\n`);
      },
    });
  }

  await exited;
  closed = true;
  const summary = await endSession(backend, (message) => notify((s) => s.yellow(message)));
  if (summary !== undefined && (interactive || (source.kind === 'script' && source.report === true))) {
    const target = interactive ? output : errorOutput;
    target.write(`${reportText(runtime, summary, interactive ? style : errorStyle)}\n`);
  }
  unsubscribe();
  await backend.close().catch(() => undefined);
  return exitCode;
}

/** The first lines of the interactive REPL. */
function banner(runtime: ReplRuntime, style: Style): string {
  const session = runtime.backend.sessionId;
  const label = session === undefined ? '' : `, session ${runtime.labels.label(session)}`;
  return [
    `${style.bold('Trestle REPL')}: ${runtime.backend.description}${label}`,
    style.dim("py is the bridge: await py.math.sqrt(16), p = await py.re.compile('\\\\d+'). .help for help."),
  ].join('\n');
}

/** Replaces node:repl's domain error listener with `handle`, falling back to the original listeners. */
function interceptErrors(server: REPLServer, handle: (error: unknown) => boolean): void {
  const domain = (server as unknown as { _domain?: EventEmitter })._domain;
  if (domain === undefined) return;
  const originals = domain.listeners('error') as ((error: unknown) => void)[];
  domain.removeAllListeners('error');
  domain.on('error', (error: unknown) => {
    if (handle(error)) return;
    for (const listener of originals) listener.call(domain, error);
  });
}

/** An error in script mode: Python tracebacks and bridge errors as in the REPL, others `Uncaught X: ...`. */
function scriptErrorText(error: unknown, style: Style): string {
  if (isBridgeError(error)) return formatError(error, style);
  // Errors thrown by REPL code come from the REPL's context (another realm): no `instanceof Error`.
  if (types.isNativeError(error)) return style.red(`Uncaught ${error.name}: ${error.message}`);
  return style.red(`Uncaught ${inspect(error)}`);
}

/**
 * Feeds script lines to the REPL one at a time: the next line goes in when the REPL shows its prompt
 * again (the previous one finished, including its awaits). Returns a function that stops the feed.
 */
function feedScript(
  server: REPLServer,
  input: PassThrough,
  lines: AsyncIterable<string>,
  hooks: { incomplete(): boolean; fail(message: string): void },
): () => void {
  const iterator = lines[Symbol.asyncIterator]();
  let stopped = false;
  let waiting = false;
  const finish = () => {
    if (stopped) return;
    stopped = true;
    input.end();
    server.close();
  };
  const next = async () => {
    if (stopped) return;
    let item: IteratorResult<string>;
    try {
      item = await iterator.next();
    } catch (error) {
      hooks.fail(`cannot read the script: ${messageOf(error)}`);
      finish();
      return;
    }
    if (stopped) return;
    if (item.done) {
      if (hooks.incomplete()) hooks.fail('SyntaxError: unexpected end of input');
      finish();
      return;
    }
    waiting = true;
    input.write(`${item.value}\n`);
  };
  // A script shows no prompts (not even node:repl's `... ` for a statement that goes on).
  server.displayPrompt = () => {
    if (!waiting) return;
    waiting = false;
    setImmediate(() => void next());
  };
  void next();
  return () => {
    void iterator.return?.();
    finish();
  };
}

/** Ends the session on exit; says why when it cannot. */
async function endSession(
  backend: Backend,
  warn: (message: string) => void,
): Promise<EndSummary | undefined> {
  const signal = AbortSignal.timeout(END_TIMEOUT_MS);
  try {
    return await backend.end({ reopen: false, signal });
  } catch (error) {
    const session = backend.sessionId;
    warn(
      `could not end the session${session === undefined ? '' : ` ${session}`}: ${messageOf(error)}` +
        (backend.mode === 'remote' ? ' (the server ends it when its resume grace passes)' : ''),
    );
    return undefined;
  }
}

function onBackendEvent(
  event: BackendEvent,
  runtime: ReplRuntime,
  scopeNames: ScopeNames,
  evaluate: (expression: string) => unknown,
  notify: (render: (style: Style) => string) => void,
  server: REPLServer,
  output: NodeJS.WritableStream,
  errorOutput: NodeJS.WritableStream,
  interactive: boolean,
): void {
  const label = (id: string) => runtime.labels.label(id);
  switch (event.type) {
    case 'output':
      if (interactive) notify((s) => s.dim(event.line));
      else (event.stream === 'stdout' ? output : errorOutput).write(`${event.line}\n`);
      return;
    case 'warning':
      notify((s) => s.yellow(event.message));
      return;
    case 'disconnected':
      notify((s) => s.yellow(`connection lost (${event.why}); reconnecting...`));
      return;
    case 'resumed':
      notify((s) =>
        s.green(
          `reconnected: session ${label(event.sessionId)} resumed with its ${event.refs} ref${event.refs === 1 ? '' : 's'}`,
        ),
      );
      return;
    case 'session-ending':
      notify((s) => s.yellow(`the server is ending session ${label(event.sessionId)} (${event.reason})`));
      return;
    case 'session-replaced': {
      const names = scopeNames.byRef(evaluate, Object.keys(server.context));
      for (const ref of event.lost) runtime.lost.add(ref.id);
      for (const ref of runtime.known.values()) if (ref.sessionId === event.from) runtime.lost.add(ref.id);
      const lost = event.lost.map((ref) => {
        const held = names.get(ref.id);
        return `${held === undefined ? '' : `${held.join(', ')} `}${refLabel(runtime, ref)}`;
      });
      notify((s) =>
        [
          s.yellow(
            `session ${label(event.from)} could not be kept (${event.why}); now in new session ${label(event.to)}`,
          ),
          lost.length === 0
            ? s.dim('no refs were lost')
            : s.yellow(`lost refs (${lost.length}): ${lost.join('; ')}`),
        ].join('\n'),
      );
      return;
    }
  }
}

/** Where the adapter reports its own events (worker started, crashed, restarted). */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** One line a worker wrote to its stdout (`print()`) or stderr. */
export interface PythonOutput {
  readonly workerId: number;
  readonly pid: number | undefined;
  readonly stream: 'stdout' | 'stderr';
  /** The line, without its newline. Lines longer than 64 KiB arrive in pieces. */
  readonly line: string;
}

/** The default logger: warnings and errors to `console`, the rest dropped. */
export const consoleLogger: Logger = {
  info: () => {},
  warn: (message, fields) => console.warn(`[python-adapter] ${message}`, fields ?? ''),
  error: (message, fields) => console.error(`[python-adapter] ${message}`, fields ?? ''),
};

/** The default output handler: each line to the host's stdout or stderr, tagged `[py1]`. */
export function writeOutput(entry: PythonOutput): void {
  const target = entry.stream === 'stdout' ? process.stdout : process.stderr;
  target.write(`[py${entry.workerId}] ${entry.line}\n`);
}

const MAX_LINE = 64 * 1024;

/** Splits a byte stream into lines (UTF-8), cutting lines longer than 64 KiB. */
export class LineSplitter {
  private partial = '';
  private readonly decoder = new TextDecoder();
  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: Buffer): void {
    let text = this.partial + this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', start)) {
      const end = index > start && text.charCodeAt(index - 1) === 13 ? index - 1 : index;
      this.emit(text.slice(start, end));
      start = index + 1;
    }
    text = text.slice(start);
    while (text.length > MAX_LINE) {
      this.emit(text.slice(0, MAX_LINE));
      text = text.slice(MAX_LINE);
    }
    this.partial = text;
  }

  end(): void {
    const rest = this.partial + this.decoder.decode();
    this.partial = '';
    if (rest.length > 0) this.emit(rest);
  }
}

/** Keeps the last `limit` characters of a stream (the stderr tail of crash reports). */
export class TailBuffer {
  private text = '';
  constructor(private readonly limit = 8192) {}
  push(line: string): void {
    this.text += `${line}\n`;
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }
  get value(): string {
    return this.text.length > this.limit ? this.text.slice(-this.limit) : this.text;
  }
}

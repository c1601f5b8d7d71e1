#!/usr/bin/env node
/** The `trestle-repl` bin (see cli.ts for the flags and exit codes). */
import { runCli } from './cli';

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
process.exitCode = code;
// Whatever still holds the event loop (a socket closing, a worker exiting) gets a moment, not forever.
setTimeout(() => process.exit(code), 2_000).unref();

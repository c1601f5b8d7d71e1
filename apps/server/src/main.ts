#!/usr/bin/env node
/**
 * The `trestle-server` bin: `trestle-server [serve] [flags]` and `trestle-server token ...` (see cli.ts).
 * Serve prints its URL, a dev token when it made its own secret, and how to attach the REPL on stderr;
 * JSON logs go to stdout. Exit codes: 0 after a graceful shutdown, 1 start-up failure, 2 bad
 * configuration.
 */
import { createApp } from './app';
import { runCli } from './cli';

process.on('uncaughtException', (error) => {
  process.stderr.write(`trestle-server: uncaught exception: ${error.stack ?? String(error)}\n`);
  process.exit(1);
});

const result = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  createApp,
});
if ('exitCode' in result) process.exitCode = result.exitCode;

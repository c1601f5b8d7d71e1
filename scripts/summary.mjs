#!/usr/bin/env node
// Sums the test reports in ./reports (vitest JSON, Python unittest JSON) into `N passed, N failed`.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function summarize(reports) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  if (!existsSync(reports)) return { passed, failed: 1, skipped };
  for (const name of readdirSync(reports)) {
    if (!name.endsWith('.json')) continue;
    const report = JSON.parse(readFileSync(join(reports, name), 'utf8'));
    if (typeof report.numPassedTests === 'number') {
      passed += report.numPassedTests;
      failed += report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
      skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
      // A file that failed to load counts as a failure even when it has no tests.
      for (const file of report.testResults ?? []) {
        if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) failed += 1;
      }
    } else if (typeof report.passed === 'number') {
      passed += report.passed;
      failed += report.failed;
      skipped += report.skipped ?? 0;
    }
  }
  return { passed, failed, skipped };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const reports = resolve(process.argv[2] ?? join(fileURLToPath(new URL('..', import.meta.url)), 'reports'));
  const { passed, failed } = summarize(reports);
  console.log(`${passed} passed, ${failed} failed`);
}

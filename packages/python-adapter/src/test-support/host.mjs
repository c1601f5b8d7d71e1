// A host process for the "host dies" test: starts a worker, has Python start a grandchild, prints
// both pids, then idles until it is killed. Runs against the build (dist/).
import { createPython } from '../../dist/index.js';

const py = createPython({ onOutput: () => {} });
const worker = await py.call('trestle_fixtures', 'pid');
const sleeper = await py.call('trestle_fixtures', 'spawn_sleeper');
process.stdout.write(`${JSON.stringify({ worker, sleeper })}\n`);
setInterval(() => {}, 1_000);

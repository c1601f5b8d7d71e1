import { memoryContenders } from './budget-memory';
import { measureThroughput } from './harness';
import { shuffledKeys } from './config';
const skip = process.argv[2]?.split(',') ?? [];
const keys = shuffledKeys(100_000);
for (let k = 0; k < 2; k++) {
const cs = memoryContenders(keys, 'steady').filter((c) => !skip.includes(c.id));
const t = performance.now();
const res = await measureThroughput(cs, { rounds: 9, sampleMs: Number(process.env.MS ?? 100), warmupMs: 300, maxOpsPerSample: 5e6 });
console.log(((performance.now() - t) / 1000).toFixed(1) + 's');
for (const r of res) console.log('  ', r.label.padEnd(40), (r.opsPerSec / 1e6).toFixed(2) + 'M', (r.madPct * 100).toFixed(1) + '%', r.samples.map((s) => (s / 1e6).toFixed(2)).join(' '));
}
process.exit(0);

import { memoryContenders } from './budget-memory';
import { measureThroughput } from './harness';
import { shuffledKeys } from './config';
for (const [keys, tier] of [[['hot'], 'steady'], [['hot'], 'refilling'], [shuffledKeys(100_000), 'steady'], [shuffledKeys(100_000), 'refilling']] as const) {
  const t = performance.now();
  const res = await measureThroughput(memoryContenders(keys, tier), { rounds: 5, sampleMs: 100, warmupMs: 300, maxOpsPerSample: 5e6 });
  console.log(keys.length, tier, ((performance.now() - t) / 1000).toFixed(1) + 's');
  for (const r of res) console.log('  ', r.label.padEnd(40), (r.opsPerSec / 1e6).toFixed(2) + 'M', (r.madPct * 100).toFixed(1) + '%', r.allowedFraction);
}

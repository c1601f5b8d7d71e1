/**
 * Profiling helper (not part of `pnpm bench`): a bare consumeSync loop on one hot key, for
 * `node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx src/profile.ts [steady|refilling] [millions]`
 * (open the .cpuprofile in Chrome DevTools or speedscope).
 */
import { createBudget, memoryStore } from '@trestle/budget';
import { TIERS } from './config';

const tier = process.argv[2] === 'refilling' ? 'refilling' : 'steady';
const calls = Math.min(200, Math.max(1, Number(process.argv[3] ?? 30))) * 1e6;
const budget = createBudget({ store: memoryStore(), tiers: TIERS });
let allowed = 0;
const start = performance.now();
for (let i = 0; i < calls; i++) if (budget.consumeSync('hot-key', tier, 1).allowed) allowed++;
const ms = performance.now() - start;
console.log(`${tier}: ${allowed}/${calls} allowed, ${((calls / ms) * 1e3).toFixed(0)} ops/s`);

/**
 * Test helpers of `@trestle/ws-bridge`: a manual clock (timers fire only on `advance`) and a seeded
 * random source, so backoff, refresh and heartbeat schedules are exact.
 */
export { type ManualClock, manualClock, seededRandom } from './manual-clock';

import { memoryRefStore } from './stores/memory';
import { testRefStore } from './testing';

testRefStore('memory', ({ maxRefs, idleMs, onEvict }) => memoryRefStore({ maxRefs, idleMs, onEvict }));

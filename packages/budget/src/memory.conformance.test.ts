import { memoryStore } from './stores/memory';
import { testBudgetStore } from './testing';

testBudgetStore('memory', () => memoryStore(), { seeds: [1, 2, 3, 4, 5, 6] });

import { MemoryEventStore } from '../../src/store/memory-store';
import { eventStoreContract } from './event-store.contract';

eventStoreContract('memory', async (clock) => new MemoryEventStore(clock));

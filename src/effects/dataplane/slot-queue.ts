// A fixed-capacity FIFO of slots (a ring buffer): requests waiting their turn, in ring order.
import type { Slot } from './slot';

export class SlotQueue {
  private readonly items: (Slot | undefined)[];
  private head = 0;
  private n = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<Slot | undefined>(capacity);
  }

  get length(): number {
    return this.n;
  }

  push(s: Slot): void {
    if (this.n === this.capacity) throw new RangeError('slot queue full');
    this.items[(this.head + this.n) % this.capacity] = s;
    this.n++;
  }

  peek(): Slot {
    if (this.n === 0) throw new RangeError('slot queue empty');
    return this.items[this.head]!;
  }

  shift(): Slot {
    const s = this.peek();
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.n--;
    return s;
  }
}

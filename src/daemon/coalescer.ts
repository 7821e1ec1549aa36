// Watches are level-triggered hints: a burst of firings for one key needs one read, and a firing
// during a read needs one more read after it. This runs at most one job per key at a time and
// never queues more than one follow-up.
export class Coalescer {
  private readonly state = new Map<string, 'queued' | 'running' | 'rerun'>();

  constructor(private readonly onError: (key: string, err: unknown) => void) {}

  schedule(key: string, job: () => Promise<void>): void {
    const s = this.state.get(key);
    if (s === 'queued' || s === 'rerun') return;
    if (s === 'running') {
      this.state.set(key, 'rerun');
      return;
    }
    this.state.set(key, 'queued');
    setImmediate(() => void this.run(key, job));
  }

  private async run(key: string, job: () => Promise<void>): Promise<void> {
    this.state.set(key, 'running');
    try {
      await job();
    } catch (err) {
      this.onError(key, err);
    }
    if (this.state.get(key) === 'rerun') {
      this.state.set(key, 'queued');
      setImmediate(() => void this.run(key, job));
    } else {
      this.state.delete(key);
    }
  }

  /** Resolves when no job is queued or running. */
  async idle(): Promise<void> {
    while (this.state.size > 0) await new Promise((r) => setImmediate(r));
  }
}

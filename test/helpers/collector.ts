// Collects items pushed by callbacks (events, subscriptions) and lets a test await a
// condition over them: resolved by the push that satisfies it, never by polling or sleeping.
export class Collector<T> {
  readonly items: T[] = [];
  private waiters: { done: (items: T[]) => boolean; resolve: () => void }[] = [];

  push = (item: T): void => {
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => {
      if (!w.done(this.items)) return true;
      w.resolve();
      return false;
    });
  };

  until(done: (items: T[]) => boolean, timeoutMs = 15_000): Promise<void> {
    if (done(this.items)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`condition not met within ${timeoutMs} ms (${this.items.length} items)`),
          ),
        timeoutMs,
      );
      this.waiters.push({
        done,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

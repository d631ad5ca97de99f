/**
 * `fn` over `items`, at most `limit` running at once, started in the items' order: one promise per item,
 * so a caller can await the results in order as they come (the CLI's multi-container verbs print each as
 * soon as those before it are done) or all together (Promise.all). A failure rejects only its own promise.
 */
export function limited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R>[] {
  let running = 0;
  const waiting: (() => void)[] = [];
  return items.map(async (item) => {
    if (running >= limit) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await fn(item);
    } finally {
      running--;
      waiting.shift()?.();
    }
  });
}

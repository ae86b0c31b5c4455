/**
 * Resolves with `true` once `work` has finished, or with `false` at `deadline` (epoch ms) if
 * it has not (the work goes on, unawaited). Rejects as `work` does before the deadline.
 */
export async function withinDeadline(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

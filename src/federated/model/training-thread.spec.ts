import { Logger } from '@nestjs/common';
import { Worker } from 'node:worker_threads';
import { initialWeights } from './architecture';
import { evaluate, trainLocal, type Examples, type LocalTrainingInput } from './train';
import { TrainingThread } from './training-thread';

/** Five features, labels from a noisy linear rule. */
function examples(n: number): Examples {
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = [0, 1, 2, 3, 4].map((j) => Math.sin(i * (1.3 + j)));
    x.push(row);
    y.push(row[0] - 0.5 * row[1] + 0.4 * Math.sin(i * 5.1) > 0 ? 1 : 0);
  }
  return { x, y };
}

const FEATURES = ['2345-7', '4548-4', '39156-5', '8480-6', '2085-9'];
const input = (preset: 'LOGISTIC' | 'MLP', mu = 0): LocalTrainingInput => ({
  preset,
  features: FEATURES,
  examples: examples(150),
  epochs: 2,
  batchSize: 16,
  learningRate: 0.1,
  seed: 3,
  globalWeights: initialWeights(preset, FEATURES.length, 9),
  mu,
});

describe('TrainingThread', () => {
  const thread = new TrainingThread();
  afterAll(() => thread.close());

  it.each([
    ['LOGISTIC', 0],
    ['MLP', 0],
    ['LOGISTIC', 0.5],
  ] as const)(
    'trains a %s (μ = %s) to exactly the weights and metrics of training on this thread',
    async (preset, mu) => {
      const there = await thread.trainLocal(input(preset, mu));
      expect(thread.threaded).toBe(true);
      const here = await trainLocal(input(preset, mu));
      expect(Buffer.from(there.weights.buffer)).toEqual(Buffer.from(here.weights.buffer));
      expect(there.metrics).toEqual(here.metrics);
      expect(there.numExamples).toBe(150);
      const held = examples(40);
      expect(await thread.evaluate(preset, there.weights, held)).toEqual(
        await evaluate(preset, here.weights, held),
      );
    },
  );

  it('takes several requests at once and answers each its own', async () => {
    const seeds = [1, 2, 3, 4];
    const there = await Promise.all(
      seeds.map((seed) => thread.trainLocal({ ...input('LOGISTIC'), seed })),
    );
    for (const [i, seed] of seeds.entries()) {
      const here = await trainLocal({ ...input('LOGISTIC'), seed });
      expect(Array.from(there[i].weights)).toEqual(Array.from(here.weights));
    }
  });

  it('fails as training here fails: a RangeError with the same message', async () => {
    // Gradients of 1e30 times a learning rate of 1e10 overflow float32; an epoch of 0 is refused.
    const huge = { x: [[1e30, 1e30, 1e30, 1e30, 1e30]], y: [0] };
    for (const bad of [
      { ...input('LOGISTIC'), examples: huge, learningRate: 1e10 },
      { ...input('LOGISTIC'), epochs: 0 },
      // Rows of uneven width cross unpacked, to be refused there as here.
      {
        ...input('LOGISTIC'),
        examples: {
          x: [
            [1, 2, 3, 4, 5],
            [1, 2],
          ],
          y: [0, 1],
        },
      },
      { ...input('LOGISTIC'), examples: { x: [[1, 2, 3, 4, 5]], y: [0, 1] } },
    ]) {
      const here = await trainLocal(bad).then(
        () => 'trained',
        (e: Error) => e,
      );
      const there = await thread.trainLocal(bad).then(
        () => 'trained',
        (e: Error) => e,
      );
      expect(here).toBeInstanceOf(RangeError);
      expect(there).toBeInstanceOf(RangeError);
      expect((there as Error).message).toBe((here as Error).message);
    }
  });

  it('starts again after it was closed', async () => {
    await thread.close();
    expect(thread.threaded).toBe(false);
    const result = await thread.trainLocal(input('LOGISTIC'));
    expect(result.weights).toHaveLength(6);
  });

  it('trains on this thread, and says so once, when no worker can start', async () => {
    const broken = new TrainingThread(
      () => new Worker('throw new Error("no thread here")', { eval: true }),
    );
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const [first, second] = await Promise.all([
        broken.trainLocal(input('LOGISTIC')),
        broken.trainLocal({ ...input('LOGISTIC'), seed: 4 }),
      ]);
      const third = await broken.trainLocal(input('LOGISTIC'));
      expect(broken.threaded).toBe(false);
      expect(Array.from(first.weights)).toEqual(
        Array.from((await trainLocal(input('LOGISTIC'))).weights),
      );
      expect(Array.from(third.weights)).toEqual(Array.from(first.weights));
      expect(second.numExamples).toBe(150);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
      await broken.close();
    }
  });

  it('fails what a crashed worker held, and starts another for the next request', async () => {
    const crashing = new TrainingThread(
      () =>
        new Worker(
          `const { parentPort } = require('node:worker_threads');
           let n = 0;
           parentPort.on('message', (r) => {
             if (n++ === 0) parentPort.postMessage({ id: r.id, ok: false, error: { name: 'Error', message: 'first' } });
             else process.exit(3);
           });`,
          { eval: true },
        ),
    );
    await expect(crashing.trainLocal(input('LOGISTIC'))).rejects.toThrow('first');
    await expect(crashing.trainLocal(input('LOGISTIC'))).rejects.toThrow(/exit code 3/);
    // A new worker: it answers its first request again.
    await expect(crashing.trainLocal(input('LOGISTIC'))).rejects.toThrow('first');
    await crashing.close();
  });
});

// @ConsentChecked is enforced: an answer holding a patient's data that no permitting PDP
// decision in the same operation covered is withheld, however the handler got it.
import { CallHandler, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { firstValueFrom, from } from 'rxjs';
import { ConsentChecked } from '../auth';
import { InternalError } from '../common/errors';
import { ConsentCheckInterceptor } from './consent-check.interceptor';
import { notePermitted } from './decision-scope';

class Resolver {
  @ConsentChecked()
  checked() {}
  unchecked() {}
}

function contextFor(handler: 'checked' | 'unchecked'): ExecutionContext {
  return {
    getHandler: () => Resolver.prototype[handler],
    getClass: () => Resolver,
  } as unknown as ExecutionContext;
}

/** Nest's CallHandler: the handler runs when handle() is called, in that async context. */
function handlerOf(run: () => Promise<unknown>): CallHandler {
  return { handle: () => from(run()) };
}

const interceptor = new ConsentCheckInterceptor(new Reflector());
const answer = (ctx: ExecutionContext, run: () => Promise<unknown>) =>
  firstValueFrom(interceptor.intercept(ctx, handlerOf(run)));
const tick = () => new Promise((r) => setImmediate(r));

describe('ConsentCheckInterceptor', () => {
  const page = { items: [{ patientId: 'p1' }, { patientId: 'p2' }] };

  it('passes an answer covered by permitting decisions made across awaits', async () => {
    const out = await answer(contextFor('checked'), async () => {
      await tick();
      notePermitted('p1');
      await tick();
      notePermitted('p2');
      return page;
    });
    expect(out).toBe(page);
  });

  it('withholds a page holding a patient the PDP never permitted', async () => {
    await expect(
      answer(contextFor('checked'), async () => {
        notePermitted('p1');
        return page;
      }),
    ).rejects.toBeInstanceOf(InternalError);
  });

  it('withholds a single record, or a report, answered without any decision', async () => {
    await expect(
      answer(contextFor('checked'), async () => ({ patientId: 'p1' })),
    ).rejects.toBeInstanceOf(InternalError);
    await expect(
      answer(contextFor('checked'), async () => ({ recordId: 'r1', status: 'VERIFIED' })),
    ).rejects.toBeInstanceOf(InternalError);
  });

  it('lets null through (nothing disclosed) and leaves unmarked operations alone', async () => {
    expect(await answer(contextFor('checked'), async () => null)).toBeNull();
    expect(await answer(contextFor('unchecked'), async () => page)).toBe(page);
  });

  it('does not let one operation’s decisions cover another running at the same time', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const permitted = answer(contextFor('checked'), async () => {
      notePermitted('p1');
      notePermitted('p2');
      await gate;
      return page;
    });
    const unpermitted = answer(contextFor('checked'), async () => {
      await tick();
      return page;
    });
    await expect(unpermitted).rejects.toBeInstanceOf(InternalError);
    release();
    await expect(permitted).resolves.toBe(page);
  });
});

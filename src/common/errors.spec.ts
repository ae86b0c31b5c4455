import { BadUserInputError, CustodiaError, NotFoundError } from './errors';

describe('contract errors', () => {
  it('carry their contract code and the offending field', () => {
    const e = new BadUserInputError('first must be between 1 and 100', 'first');
    expect(e).toBeInstanceOf(CustodiaError);
    expect(e.code).toBe('BAD_USER_INPUT');
    expect(e.details).toEqual({ field: 'first' });
    expect(e.name).toBe('BadUserInputError');
  });

  it('name themselves after their class', () => {
    expect(new NotFoundError('no such record').name).toBe('NotFoundError');
  });
});

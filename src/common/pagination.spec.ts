import fc from 'fast-check';
import { BadUserInputError } from './errors';
import { decodeCursor, encodeCursor, pageSize } from './pagination';

describe('page cursors', () => {
  it('round-trip any position', () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), fc.uuid(), (createdAt, id) => {
        expect(decodeCursor(encodeCursor({ createdAt, id }))).toEqual({ createdAt, id });
      }),
    );
  });

  it.each([
    '',
    'garbage',
    Buffer.from('[1,"x"]').toString('base64url'),
    Buffer.from('{}').toString('base64url'),
  ])('reject a cursor the API did not issue: %j', (c) => {
    expect(() => decodeCursor(c)).toThrow(BadUserInputError);
  });

  it('bound the page size', () => {
    expect(pageSize(undefined)).toBe(20);
    expect(pageSize(100)).toBe(100);
    for (const bad of [0, -1, 101, 1.5]) expect(() => pageSize(bad)).toThrow(/first must be/);
  });
});

import fc from 'fast-check';
import { BadUserInputError } from './errors';
import { decodeCursor, encodeCursor, pageSize } from './pagination';

describe('page cursors', () => {
  it('round-trip any position PostgreSQL can store', () => {
    const storable = fc.date({
      min: new Date('0001-01-01T00:00:00Z'),
      max: new Date('9999-12-31T23:59:59.999Z'),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(storable, fc.uuid(), (createdAt, id) => {
        expect(decodeCursor(encodeCursor({ createdAt, id }))).toEqual({ createdAt, id });
      }),
    );
  });

  it.each([
    '',
    'garbage',
    Buffer.from('[1,"x"]').toString('base64url'),
    Buffer.from('{}').toString('base64url'),
    // Safe integers, but no instant PostgreSQL (or a Date) can hold.
    Buffer.from('[9007199254740991,"00000000-0000-4000-8000-000000000000"]').toString('base64url'),
    Buffer.from('[-8.7e15,"00000000-0000-4000-8000-000000000000"]').toString('base64url'),
    Buffer.from('[-62198755200000,"00000000-0000-4000-8000-000000000000"]').toString('base64url'),
  ])('reject a cursor the API did not issue: %j', (c) => {
    expect(() => decodeCursor(c)).toThrow(BadUserInputError);
  });

  it('bound the page size', () => {
    expect(pageSize(undefined)).toBe(20);
    expect(pageSize(100)).toBe(100);
    for (const bad of [0, -1, 101, 1.5]) expect(() => pageSize(bad)).toThrow(/first must be/);
  });
});

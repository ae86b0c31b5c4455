import fc from 'fast-check';
import { parseInstant } from './instants';

const valid = (text: string) => !Number.isNaN(parseInstant(text).getTime());

describe('parseInstant', () => {
  it.each([
    ['2030-01-01T00:00:00Z', '2030-01-01T00:00:00.000Z'],
    ['2030-01-01t09:30:00.123456+02:00', '2030-01-01T07:30:00.123Z'],
    ['2024-02-29T23:59:59-05:00', '2024-03-01T04:59:59.000Z'],
    ['2030-06-15', '2030-06-15T00:00:00.000Z'],
    ['2000-02-29', '2000-02-29T00:00:00.000Z'],
  ])('reads %s as %s', (text, iso) => {
    expect(parseInstant(text).toISOString()).toBe(iso);
  });

  it.each([
    ['a date-time without a zone', '2030-01-01T00:00:00'],
    ['a day the month has not', '2030-02-30T00:00:00Z'],
    ['February 29th of a common year', '2100-02-29'],
    ['a 13th month', '2030-13-01'],
    ['a leap second', '2016-12-31T23:59:60Z'],
    ['hour 24', '2030-01-01T24:00:00Z'],
    ['an offset of 24 hours', '2030-01-01T00:00:00+24:00'],
    ['words', 'next Tuesday'],
    ['an epoch number as text', '1700000000000'],
    ['a space for the T', '2030-01-01 00:00:00Z'],
  ])('refuses %s', (_name, text) => {
    expect(valid(text)).toBe(false);
  });

  it('agrees with toISOString on every instant it is given back', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z') }),
        (d) => {
          fc.pre(!Number.isNaN(d.getTime()));
          expect(parseInstant(d.toISOString()).getTime()).toBe(d.getTime());
        },
      ),
    );
  });
});

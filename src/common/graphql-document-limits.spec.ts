import { parse } from 'graphql';
import { documentLimitProblem } from './graphql-document-limits';

const LIMITS = { maxTokens: 50, maxNesting: 6 };

describe('GraphQL document limits', () => {
  it('pass an ordinary operation', () => {
    expect(
      documentLimitProblem('query($p: ID!) { records(patientId: $p) { items { id } } }', LIMITS),
    ).toBeUndefined();
  });

  it('refuse a document with too many tokens', () => {
    expect(documentLimitProblem(`{ me { ${'id '.repeat(60)} } }`, LIMITS)).toMatch(
      /more than 50 tokens/,
    );
  });

  it('do not count comments as tokens', () => {
    expect(documentLimitProblem(`# ${'x '.repeat(100)}\n{ me { id } }`, LIMITS)).toBeUndefined();
  });

  it('refuse brackets nested past the limit, whatever their kind', () => {
    expect(documentLimitProblem('{ a(x: [[[[[1]]]]]) }', LIMITS)).toMatch(/more than 6 levels/);
    expect(documentLimitProblem('{ a(x: [[[[1]]]]) }', LIMITS)).toBeUndefined();
  });

  it('check, without overflowing, a document the parser itself cannot survive', () => {
    const deep = `{ a(x: ${'['.repeat(4000)}1${']'.repeat(4000)}) }`;
    expect(() => parse(deep)).toThrow(RangeError);
    expect(documentLimitProblem(deep, { maxTokens: 100_000, maxNesting: 128 })).toMatch(/128/);
  });

  it('leave syntax errors to the parser, which reports where they are', () => {
    expect(documentLimitProblem('{ me { id ', LIMITS)).toBeUndefined();
    expect(documentLimitProblem('{ me(x: "unterminated) }', LIMITS)).toBeUndefined();
  });

  it('never quote the document', () => {
    const problem = documentLimitProblem(`{ a(x: "Jane Doe") ${'{ b '.repeat(10)} }`, LIMITS);
    expect(problem).toBeDefined();
    expect(problem).not.toContain('Jane');
  });
});

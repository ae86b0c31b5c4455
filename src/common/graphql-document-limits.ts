// Limits on a GraphQL document's size, checked on its tokens before anything parses it. The
// parser recurses into every bracket, so a document that is mostly `[` overflows the stack
// while being parsed; and a limit enforced inside Apollo's parsing hook turns even a plain
// syntax error into an HTTP 500. Here a document over a limit is answered as GraphQL over
// HTTP answers any request error: 400, BAD_USER_INPUT, without quoting the document.
import type { NextFunction, Request, Response } from 'express';
import { Lexer, Source, TokenKind } from 'graphql';
import { BoundedMap } from './bounded-map';
import { sendError } from './error-response';

export interface DocumentLimits {
  /** Lexical tokens in the document (comments excluded). */
  maxTokens: number;
  /** Brackets (`{`, `[`, `(`) open at once: selections and argument values together. */
  maxNesting: number;
}

const OPENING = new Set<TokenKind>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<TokenKind>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/** What is wrong with the document's size, if anything; one pass over its tokens, no recursion. */
export function documentLimitProblem(source: string, limits: DocumentLimits): string | undefined {
  const lexer = new Lexer(new Source(source));
  let tokens = 0;
  let nesting = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > limits.maxTokens) {
        return `The GraphQL document has more than ${limits.maxTokens} tokens (the limit); send smaller operations, and values as variables.`;
      }
      if (OPENING.has(token.kind) && ++nesting > limits.maxNesting) {
        return `The GraphQL document nests brackets more than ${limits.maxNesting} levels deep (the limit).`;
      }
      if (CLOSING.has(token.kind)) nesting--;
    }
  } catch {
    // Not even valid tokens: the parser reports the syntax error, with its place.
  }
  return undefined;
}

/** Documents remembered as within the limits: clients send the same few operations. */
const ACCEPTED_LIMIT = 1_000;
/** Longer documents are checked every time, so the memory held stays small. */
const ACCEPTED_MAX_LENGTH = 4_096;

/** Express middleware for the GraphQL route, ahead of Apollo (GET query string or JSON body). */
export function graphqlDocumentLimits(limits: DocumentLimits) {
  // The check is a pure function of the document: one that passed passes again.
  const accepted = new BoundedMap<string, true>(ACCEPTED_LIMIT);
  return (req: Request, res: Response, next: NextFunction): void => {
    const query: unknown =
      req.method === 'GET'
        ? (req.query as Record<string, unknown>)?.query
        : (req.body as Record<string, unknown> | undefined)?.query;
    if (typeof query !== 'string' || accepted.get(query)) return next();
    const problem = documentLimitProblem(query, limits);
    if (!problem) {
      if (query.length <= ACCEPTED_MAX_LENGTH) accepted.set(query, true);
      return next();
    }
    sendError(res, 400, problem, 'BAD_USER_INPUT');
  };
}

// Errors about part of an answer. A resolver that still answers (say, a page of records from
// which one unreadable record was withheld) notes the error here instead of throwing; the
// plugin then adds it to the response's `errors`, beside the data, formatted like any other.
// GraphQL itself cannot do this for a non-null list item without nulling the whole list.
import type { ApolloServerPlugin } from '@apollo/server';
import { CustodiaError } from './errors';
import { formatCustodiaError } from './graphql-errors';

export type ResponsePath = readonly (string | number)[];

export class PartialErrors {
  private readonly noted: { error: CustodiaError; path: ResponsePath }[] = [];

  add(error: CustodiaError, path: ResponsePath): void {
    this.noted.push({ error, path });
  }

  get all(): readonly { error: CustodiaError; path: ResponsePath }[] {
    return this.noted;
  }
}

/** What every GraphQL resolver receives as its context. */
export interface GraphQLContext {
  req: unknown;
  partialErrors: PartialErrors;
}

export function graphqlContext({ req }: { req: unknown }): GraphQLContext {
  return { req, partialErrors: new PartialErrors() };
}

export function partialErrorsPlugin(): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          const noted = contextValue.partialErrors?.all ?? [];
          if (!noted.length || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          result.errors = [
            ...(result.errors ?? []),
            ...noted.map(({ error, path }) => formatCustodiaError(error, { path: [...path] })),
          ];
        },
      };
    },
  };
}

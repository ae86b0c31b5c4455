// A validation rule: an operation whose type the schema has no root for (this API has no
// subscriptions) is the client's mistake. graphql-js 16 leaves it to execution, which throws a
// plain error that would surface as INTERNAL (and be logged as one); here it is refused with
// the other validation errors, 400 and BAD_USER_INPUT.
import { GraphQLError, type ValidationRule } from 'graphql';

export const KnownOperationTypes: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (!context.getSchema().getRootType(node.operation)) {
      context.reportError(
        new GraphQLError(`This API has no ${node.operation} operations.`, { nodes: node }),
      );
    }
  },
});

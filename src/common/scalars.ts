// The contract's scalars: DateTime is Nest's ISO date-time scalar (the default for Date),
// JSON is graphql-scalars' GraphQLJSON.
export { GraphQLJSON as JSONScalar } from 'graphql-scalars';

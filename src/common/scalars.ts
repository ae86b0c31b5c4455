// The contract's scalars. DateTime is Nest's ISO date-time scalar (its name, description and
// output) with a stricter reading of its input (common/instants): a date-time without a time
// zone, or on a day the calendar has not, becomes an invalid instant, which the well-formed
// pipe refuses naming the field, as it refuses any instant PostgreSQL cannot store. JSON is
// graphql-scalars' GraphQLJSON.
import { GraphQLISODateTime } from '@nestjs/graphql';
import { GraphQLScalarType, Kind } from 'graphql';
import { parseInstant } from './instants';

export { GraphQLJSON as JSONScalar } from 'graphql-scalars';

export const DateTimeScalar = new GraphQLScalarType({
  name: GraphQLISODateTime.name,
  description: GraphQLISODateTime.description,
  serialize: GraphQLISODateTime.serialize,
  parseValue: (value) => (typeof value === 'string' ? parseInstant(value) : new Date(NaN)),
  parseLiteral: (ast) => (ast.kind === Kind.STRING ? parseInstant(ast.value) : null),
});

import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloDriver, ApolloDriverConfig } from '@nestjs/apollo';
import {
  DynamicModule,
  Logger,
  MiddlewareConsumer,
  Module,
  NestModule,
  RequestMethod,
} from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { ErrorFilter } from './common/error.filter';
import { MAX_INPUT_DEPTH } from './common/well-formed';
import { WellFormedInputPipe } from './common/well-formed.pipe';
import { GraphQLModule } from '@nestjs/graphql';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { LoggerModule } from 'nestjs-pino';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { AuditModule } from './audit';
import { AuthModule } from './auth';
import { ConsentModule } from './consent';
import { DecisionsModule } from './decisions';
import { ErasureModule } from './erasure';
import { FederatedModule } from './federated/federated.module';
import { graphqlDocumentLimits } from './common/graphql-document-limits';
import { formatGraphQLError } from './common/graphql-errors';
import { KnownOperationTypes } from './common/known-operation-types';
import { BulkFieldsOnce } from './common/bulk-fields-once';
import { graphqlContext, partialErrorsPlugin } from './common/partial-errors';
import { PROJECT_ROOT } from './common/paths';
import { DateTimeScalar } from './common/scalars';
import { AppConfig, ConfigModule } from './config';
import { DatabaseModule } from './database';
import { loggingParams, Metrics, ObservabilityModule } from './observability';
import { PatientsModule } from './patients';
import { RecordsModule } from './records';

/** Where the generated schema is written (committed; checked against the contract). */
export const SCHEMA_FILE = join(PROJECT_ROOT, 'schema.gql');

/** Limits on what one GraphQL request may ask for, enforced by graphql-armor. */
export const GRAPHQL_LIMITS = {
  maxDepth: { n: 10 },
  maxAliases: { n: 15 },
  maxDirectives: { n: 20 },
  costLimit: { maxCost: 5000 },
  // Armor's token limit parses the document inside Apollo's parsing hook, where any error
  // (a plain syntax error too) becomes an HTTP 500: GRAPHQL_DOCUMENT_LIMITS replaces it.
  maxTokens: { enabled: false },
};

/** Checked on the document's tokens before it is parsed (see graphql-document-limits). */
export const GRAPHQL_DOCUMENT_LIMITS = {
  maxTokens: 5000,
  // Selections (at most maxDepth) around argument values (at most MAX_INPUT_DEPTH).
  maxNesting: 2 * MAX_INPUT_DEPTH,
};

export interface AppOptions {
  config: AppConfig;
  /** The resolved database URL (the embedded server's when DATABASE_URL is unset). */
  databaseUrl: string;
  /** Where log lines go: stdout unless given (a test reads them from its own). */
  logTo?: DestinationStream;
}

@Module({})
export class AppModule implements NestModule {
  static forRoot({ config, databaseUrl, logTo }: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggerModule.forRoot(loggingParams(config.logLevel, logTo)),
        DatabaseModule.forRoot(databaseUrl),
        ObservabilityModule,
        GraphQLModule.forRootAsync<ApolloDriverConfig>({
          driver: ApolloDriver,
          imports: [ObservabilityModule],
          inject: [Metrics],
          useFactory: (metrics: Metrics) => {
            const armor = new ApolloArmor(GRAPHQL_LIMITS).protect();
            return {
              autoSchemaFile: config.production ? true : SCHEMA_FILE,
              buildSchemaOptions: { scalarsMap: [{ type: Date, scalar: DateTimeScalar }] },
              sortSchema: true,
              playground: false,
              introspection: !config.production,
              ...armor,
              // The parser's own token limit, behind the check that runs before it.
              parseOptions: { maxTokens: GRAPHQL_DOCUMENT_LIMITS.maxTokens },
              plugins: [
                ...armor.plugins,
                metrics.graphqlPlugin(),
                partialErrorsPlugin(),
                // No HTTP caching of PHI; and its per-field hooks cost every read.
                ApolloServerPluginCacheControlDisabled(),
              ],
              validationRules: [...armor.validationRules, KnownOperationTypes, BulkFieldsOnce],
              context: graphqlContext,
              // Field resolvers (Study.runs, TrainingRun.updates…) answer to @Roles like
              // queries do: a role admitted to a parent type is not thereby admitted to all
              // that hangs off it.
              fieldResolverEnhancers: ['guards'],
              formatError: formatGraphQLError(new Logger('GraphQL')),
            };
          },
        }),
        AuthModule.forRoot(config),
        PatientsModule,
        RecordsModule,
        ConsentModule,
        AuditModule,
        ErasureModule,
        FederatedModule,
        DecisionsModule,
      ],
      providers: [
        { provide: APP_FILTER, useClass: ErrorFilter },
        { provide: APP_PIPE, useClass: WellFormedInputPipe },
      ],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer
      .apply(graphqlDocumentLimits(GRAPHQL_DOCUMENT_LIMITS))
      .forRoutes({ path: 'graphql', method: RequestMethod.ALL });
  }
}

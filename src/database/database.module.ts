import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { dataSourceOptions } from './data-source';

@Module({})
export class DatabaseModule {
  /** Connects to `url` and applies pending migrations (never `synchronize`). */
  static forRoot(url: string): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRoot({
          ...dataSourceOptions(url),
          migrationsRun: true,
          // Reached already (startServer waits for an external database): a failure here is
          // not one to retry nine times over, each with a stack trace.
          toRetry: () => false,
        }),
      ],
    };
  }
}

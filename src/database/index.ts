export { DatabaseModule } from './database.module';
export { dataSourceOptions, ENTITIES } from './data-source';
export { preparedQuery } from './prepared';
export { DatabaseUnavailableError, isDatabaseUnavailable } from './availability';

export * from './config';
export { APP_CONFIG, ConfigModule, InjectConfig } from './config.module';

export { ErasureModule } from './erasure.module';

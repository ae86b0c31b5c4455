import { Module } from '@nestjs/common';
import { AppConfig, APP_CONFIG } from '../../config';
import { DataKeyRing, KEK } from './data-key-ring';
import { loadOrCreateKekFile, parseKek } from './key-wrap';

/** Key material stays inside this module: the KEK, the data key ring and the ciphers. */
@Module({
  providers: [
    {
      provide: KEK,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        config.kek ? parseKek(config.kek) : loadOrCreateKekFile(config.dataDir),
    },
    DataKeyRing,
  ],
  exports: [DataKeyRing],
})
export class RecordCryptoModule {}

import { Module } from '@nestjs/common';
import { AppConfig, APP_CONFIG } from '../../config';
import { DataKeyRing, KEK } from './data-key-ring';
import { KeyObject } from 'node:crypto';
import { kekOf } from './key-wrap';
import { RowAuthenticator } from './row-authenticator';

/** Key material stays inside this module: the KEK, the data key ring and the ciphers. */
@Module({
  providers: [
    {
      provide: KEK,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => kekOf(config),
    },
    DataKeyRing,
    {
      provide: RowAuthenticator,
      inject: [KEK],
      useFactory: (kek: KeyObject) => new RowAuthenticator(kek),
    },
  ],
  exports: [DataKeyRing, RowAuthenticator],
})
export class RecordCryptoModule {}

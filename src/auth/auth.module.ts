import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AppConfig, APP_CONFIG } from '../config';
import { AuthGuard } from './auth.guard';
import { DevIssuer } from './dev-issuer';
import { DevTokenController } from './dev-token.controller';
import { JwksController } from './jwks.controller';
import { TokenVerifier } from './token-verifier';

@Module({
  controllers: [JwksController],
  providers: [
    {
      provide: DevIssuer,
      inject: [APP_CONFIG],
      useFactory: async (config: AppConfig) =>
        config.auth.mode === 'dev'
          ? DevIssuer.open(config.dataDir, config.auth.issuer, config.auth.audience)
          : null,
    },
    {
      provide: TokenVerifier,
      inject: [APP_CONFIG, DevIssuer],
      useFactory: (config: AppConfig, dev: DevIssuer | null) =>
        config.auth.mode === 'jwks'
          ? TokenVerifier.forRemoteJwks(
              config.auth.jwksUrl,
              config.auth.issuer,
              config.auth.audience,
              ownOrganization(config),
            )
          : TokenVerifier.forJwks(dev!.jwks, dev!.issuer, dev!.audience, ownOrganization(config)),
    },
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
  exports: [TokenVerifier],
})
export class AuthModule {
  /**
   * The module, with the console's dev-token route only in dev-issuer mode outside production:
   * with an external identity provider, or with NODE_ENV=production, the route is never
   * registered (anyone who reaches it can sign in as anyone).
   */
  static forRoot(config: Pick<AppConfig, 'auth' | 'production'>): DynamicModule {
    return {
      module: AuthModule,
      controllers: config.auth.mode === 'dev' && !config.production ? [DevTokenController] : [],
    };
  }
}

/** The organisation tokens must name, if any (ORG_CLAIMS=own: this instance's). */
function ownOrganization(config: AppConfig): string | undefined {
  return config.orgClaims === 'own' ? config.orgId : undefined;
}

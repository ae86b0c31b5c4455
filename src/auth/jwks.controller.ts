import { Controller, Get, Header, Inject, NotFoundException } from '@nestjs/common';
import { Public } from './decorators';
import { DevIssuer } from './dev-issuer';

@Controller('.well-known')
export class JwksController {
  constructor(@Inject(DevIssuer) private readonly issuer: DevIssuer | null) {}

  /** The dev issuer's public key; absent when an external identity provider is configured. */
  @Public()
  @Get('jwks.json')
  @Header('Cache-Control', 'public, max-age=300')
  jwks() {
    if (!this.issuer) throw new NotFoundException();
    return this.issuer.jwks;
  }
}

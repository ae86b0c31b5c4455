import { Args, Mutation, Resolver } from '@nestjs/graphql';
import { Actor, CurrentActor, Roles } from '../auth';
import { ErasureService } from './erasure.service';

@Resolver()
export class ErasureResolver {
  constructor(private readonly erasure: ErasureService) {}

  @Roles('PATIENT')
  @Mutation(() => Boolean, {
    description:
      'Erase all your records and revoke all your consents (crypto-shredding); cannot be undone.',
  })
  eraseMyData(@CurrentActor() actor: Actor, @Args('confirm') confirm: boolean) {
    return this.erasure.eraseMyData(actor, confirm);
  }
}

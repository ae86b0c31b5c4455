// What an access event says beyond its row. What the ledger says: whether the grant behind a
// PERMIT was signed by the patient, from the chaincode's record of the grant, never from the
// consent projection (whose column a database writer could flip); each grant is read once per
// request. And, for a training node's use, the study, run and round, from its sealed reason.
import { Context, Parent, ResolveField, Resolver } from '@nestjs/graphql';
import { Inject } from '@nestjs/common';
import { Roles } from '../auth';
import { Ledger, LEDGER } from '../ledger';
import { parseTrainingUse, TrainingRoundRef } from '../records/training-use';
import { AccessEventModel, TrainingUseModel } from './access-event.model';
import { grantPatientSigned, LedgerAuthority, ledgerAuthority } from './justify';

@Resolver(() => AccessEventModel)
export class AccessEventResolver {
  /** One reader (and cache) of the ledger's grants per GraphQL request. */
  private readonly perRequest = new WeakMap<object, LedgerAuthority>();

  constructor(@Inject(LEDGER) private readonly ledger: Ledger) {}

  // Access events are shown to their patient only (accessLog checks whose they are).
  @Roles('PATIENT')
  @ResolveField(() => Boolean, {
    nullable: true,
    description:
      "For a PERMIT under a grant: whether the patient signed that grant, as the ledger records it (not the database's copy). Null for a DENY, a break-glass access, the patient's own read, or a grant the ledger does not hold (verifyAccessLog reports that).",
  })
  grantPatientSigned(
    @Parent() event: AccessEventModel,
    @Context() request: object,
  ): Promise<boolean | null> {
    let authority = this.perRequest.get(request);
    if (!authority) {
      authority = ledgerAuthority(this.ledger);
      this.perRequest.set(request, authority);
    }
    return grantPatientSigned(event, authority);
  }

  @Roles('PATIENT')
  @ResolveField(() => TrainingUseModel, {
    nullable: true,
    description:
      "For a TRAIN event: the study, run and round that used the records, read from the event's sealed reason. Null for other events, for one logged before nodes named the round, or once erasure destroyed the patient's key.",
  })
  trainingUse(@Parent() event: AccessEventModel): TrainingRoundRef | null {
    return event.action === 'TRAIN' ? parseTrainingUse(event.reason) : null;
  }
}

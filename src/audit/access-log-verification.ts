// A patient's own check of their access log against the ledger: the log's one global chain
// walked from genesis to the head the ledger anchored (a break anywhere weakens every proof),
// and each PERMIT on this patient checked against the grant or emergency the ledger held.
import { Field, ID, Int, ObjectType } from '@nestjs/graphql';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig, APP_CONFIG } from '../config';
import { Ledger, LEDGER } from '../ledger';
import { auditChainId } from './audit-chain';
import { QueryRows, verifyAccessLogAgainstLedger } from './verify';

@ObjectType('AccessLogVerification', {
  description:
    "A patient's access log checked against the ledger (hash chain, anchored heads, and that every PERMIT is justified by a grant or an emergency active on the ledger at that time).",
})
export class AccessLogVerificationModel {
  @Field(() => ID)
  patientId!: string;

  @Field({ description: 'True when no problem was found.' })
  ok!: boolean;

  @Field(() => Int, { description: "The patient's events walked with the chain intact." })
  eventsChecked!: number;

  @Field(() => Int, {
    description: "The patient's PERMIT events justified by the ledger (or their own account).",
  })
  permitsJustified!: number;

  @Field(() => Int, {
    description:
      'Of the justified PERMITs, those under a grant the patient signed (verified by the chaincode); the rest rest on grants their organisation wrote for them.',
  })
  permitsPatientSigned!: number;

  @Field(() => Int, {
    nullable: true,
    description: 'Sequence number of the last event covered by a head anchored on the ledger.',
  })
  anchoredThrough!: number | null;

  @Field(() => Int, {
    description: 'Events after the last anchored head: not yet provable against the ledger.',
  })
  unanchoredEvents!: number;

  @Field(() => [String])
  problems!: string[];
}

@Injectable()
export class AccessLogVerifier {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(LEDGER) private readonly ledger: Ledger,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async verify(patientId: string): Promise<AccessLogVerificationModel> {
    const query: QueryRows = (sql, params) => this.db.query(sql, params);
    const { permits, ...chain } = await verifyAccessLogAgainstLedger(
      query,
      this.ledger,
      { organization: this.config.orgId, chainId: auditChainId(this.config.instanceId) },
      patientId,
    );
    const problems = [...chain.problems, ...permits.problems];
    return {
      patientId,
      ok: problems.length === 0,
      eventsChecked: chain.eventsChecked,
      permitsJustified: permits.justified,
      permitsPatientSigned: permits.patientSigned,
      anchoredThrough: chain.anchoredThrough,
      unanchoredEvents: chain.unanchoredEvents,
      problems,
    };
  }
}

// A minimal Nest + Apollo (code-first, express) module answering `records` from memory: no
// auth, no database, no crypto. The benchmark's yardstick for the app's own overhead.
import { ApolloDriver, ApolloDriverConfig } from '@nestjs/apollo';
import { Module } from '@nestjs/common';
import { Args, GraphQLModule, ID, Int, Query, Resolver } from '@nestjs/graphql';
import { createHash, randomUUID } from 'node:crypto';
import { sampleResource } from '../lib/sample-records';
import {
  BaselineRecord,
  BaselineRecordPage,
  IntegrityStatus,
  Sensitivity,
} from './record-page.model';

const RECORDS = 1_000;

function inMemoryRecords(patientId: string): BaselineRecord[] {
  const now = Date.now();
  return Array.from({ length: RECORDS }, (_, i) => {
    const resource = { ...sampleResource(i), subject: { reference: `Patient/${patientId}` } };
    return {
      id: randomUUID(),
      patientId,
      resourceType: 'Observation',
      category: resource.category[0].coding[0].code,
      sensitivity: Sensitivity.NORMAL,
      resource,
      version: 1,
      contentHash: createHash('sha256').update(JSON.stringify(resource)).digest('hex'),
      integrity: IntegrityStatus.PENDING,
      createdAt: new Date(now - i * 1000),
    };
  });
}

@Resolver(() => BaselineRecord)
class BaselineRecordsResolver {
  private readonly patientId = randomUUID();
  private readonly stored = inMemoryRecords(this.patientId);

  @Query(() => BaselineRecordPage)
  records(
    @Args('patientId', { type: () => ID }) _patientId: string,
    @Args('first', { type: () => Int, nullable: true }) first?: number | null,
  ): BaselineRecordPage {
    const items = this.stored.slice(0, first ?? 20);
    const last = items[items.length - 1];
    const cursor = JSON.stringify([last.createdAt.getTime(), last.id]);
    return { items, nextCursor: Buffer.from(cursor).toString('base64url') };
  }
}

@Module({
  imports: [
    GraphQLModule.forRoot<ApolloDriverConfig>({
      driver: ApolloDriver,
      autoSchemaFile: true,
      sortSchema: true,
      playground: false,
    }),
  ],
  providers: [BaselineRecordsResolver],
})
export class BaselineModule {}

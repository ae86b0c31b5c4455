import { Field, ID, Int, ObjectType } from '@nestjs/graphql';

@ObjectType('ImportReport', { description: 'What importBundle stored: all entries or none.' })
export class ImportReportModel {
  @Field(() => Int, { description: 'Records created (the Patient entry included).' })
  created!: number;

  @Field(() => Int, {
    description:
      'Records imported before (from the same source: type and fullUrl) that this bundle changed: each got a new version.',
  })
  updated!: number;

  @Field(() => Int, {
    description:
      'Records imported before (from the same source: type and fullUrl) that this bundle holds unchanged: left as they were.',
  })
  unchanged!: number;

  @Field(() => Int, {
    description: "Entries skipped: types that cannot hold a patient's data, and grants.",
  })
  skipped!: number;

  @Field(() => [String], { description: 'The distinct resource types skipped.' })
  skippedTypes!: string[];

  @Field(() => [ID], { description: "The created records' ids, in bundle order." })
  recordIds!: string[];

  @Field(() => [ID], { description: "The updated records' ids, in bundle order." })
  updatedIds!: string[];

  @Field(() => [ID], { description: "The unchanged records' ids, in bundle order." })
  unchangedIds!: string[];
}

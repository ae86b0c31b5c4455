import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Search index version 2 (records/search): the clinical dates and main codes of more resource
 * types. Rows of the types below that version 1 indexed are indexed again at start-up
 * (RecordIndexing opens each under its own key, which a migration does not hold); rows of every
 * other type have the same entry under both versions and are moved to 2 here.
 */
const CHANGED_IN_V2 = [
  'AdverseEvent',
  'Appointment',
  'AppointmentResponse',
  'Basic',
  'ClaimResponse',
  'ClinicalImpression',
  'Communication',
  'CommunicationRequest',
  'Composition',
  'Consent',
  'CoverageEligibilityRequest',
  'CoverageEligibilityResponse',
  'DetectedIssue',
  'DeviceUseStatement',
  'EnrollmentRequest',
  'EpisodeOfCare',
  'Flag',
  'GuidanceResponse',
  'ImmunizationEvaluation',
  'ImmunizationRecommendation',
  'Invoice',
  'List',
  'Media',
  'NutritionOrder',
  'QuestionnaireResponse',
  'RequestGroup',
  'ResearchSubject',
  'RiskAssessment',
  'Specimen',
  'SupplyDelivery',
  'SupplyRequest',
  'Task',
  'VisionPrescription',
];

export class ClinicalDatesV21764590000000 implements MigrationInterface {
  name = 'ClinicalDatesV21764590000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX records_unindexed`);
    await q.query(
      `UPDATE records SET index_version = 2
       WHERE index_version = 1 AND resource_type <> ALL($1::text[])`,
      [CHANGED_IN_V2],
    );
    await q.query(`CREATE INDEX records_unindexed ON records (id) WHERE index_version < 2`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX records_unindexed`);
    await q.query(`UPDATE records SET index_version = 1 WHERE index_version = 2`);
    await q.query(`CREATE INDEX records_unindexed ON records (id) WHERE index_version = 0`);
  }
}

// Persists a synthetic cohort through the real services, in-process, as `custodia seed
// --synthetic` does: so every record is validated, encrypted with its patient's key and
// anchored on the ledger exactly as if the patient had written it over GraphQL.
import { createHash } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Actor } from '../../auth';
import { APP_CONFIG, type AppConfig } from '../../config';
import { runningClusterUrl } from '../../database/cluster-url';
import { OrganizationEntity, PatientsService } from '../../patients';
import { IntegrityStatus, RecordEntity, RecordsService } from '../../records';
import { startServer } from '../../server';
import { DEFAULT_ALPHA, generateCohort, SyntheticPatient, toFhir } from './cohort';

export interface SeedOptions {
  patients: number;
  sites: number;
  seed: number;
  alpha?: number;
}

/** What the command prints: the contract's `seed` row. */
export interface SeedSummary {
  organizations: { id: string }[];
  patients: { id: string; userId: string; organizationId: string }[];
}

/** Receives one human-readable line at a time (the command sends them to stderr). */
export type SeedProgress = (line: string) => void;

/** Patients seeded at once: enough to fill the ledger's blocks, few enough for the pool. */
const CONCURRENCY = 4;

/** Organisation ids are fixed, so cohorts of any seed share site-1 … site-K. */
export function siteId(site: number): string {
  return `site-${site + 1}`;
}

/**
 * The identity (token subject) of a synthetic patient. It names the whole cohort, not just
 * the seed: patient i of the same seed may sit at another site when the size, the number of
 * sites or α differ, and a registered patient cannot change organisation.
 */
export function syntheticUserId(options: SeedOptions, index: number): string {
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  return `synthetic-s${options.seed}-n${options.patients}-k${options.sites}-a${alpha}-p${index + 1}`;
}

/**
 * The id a synthetic patient's profile gets: derived from its identity and the instance's
 * organisation, so that the same seed prints the same cohort (ids included) on any fresh
 * instance of that organisation, while two organisations sharing a ledger (where consent is
 * keyed by patient id) never seed the same patient id. A UUID of version 8 (custom).
 */
export function syntheticPatientId(userId: string, orgId: string): string {
  const h = createHash('sha256')
    .update(`custodia/synthetic-patient/v1|${orgId}|${userId}`)
    .digest('hex');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Creates the cohort's organisations, patients and records in a running app. Safe to run
 * again: organisations are inserted if missing, registration returns the existing profile,
 * and a patient's records are created in a fixed order, so those already stored are a
 * prefix and only the rest (after an interrupted run) are added.
 */
export async function seedCohort(
  app: INestApplication,
  options: SeedOptions,
  progress: SeedProgress = () => undefined,
): Promise<SeedSummary> {
  const cohort = generateCohort(options);
  const db = app.get(DataSource);
  const patients = app.get(PatientsService);
  const records = app.get(RecordsService);
  const config = app.get<AppConfig>(APP_CONFIG);

  const organizations = Array.from({ length: options.sites }, (_, k) => ({ id: siteId(k) }));
  await db
    .createQueryBuilder()
    .insert()
    .into(OrganizationEntity)
    .values(organizations.map((o, k) => ({ id: o.id, name: `Synthetic site ${k + 1}` })))
    .orIgnore()
    .execute();

  const positives = cohort.patients.filter((p) => p.label === 1).length;
  progress(
    `seeding ${cohort.patients.length} synthetic patients (${positives} with type 2 diabetes) ` +
      `across ${options.sites} sites, seed ${cohort.seed}, α ${cohort.alpha}`,
  );
  const seeded: SeedSummary['patients'] = new Array(cohort.patients.length);
  const tally = { created: 0, kept: 0, pending: 0, done: 0 };
  const step = Math.max(1, Math.ceil(cohort.patients.length / 10));

  const seedOne = async (p: SyntheticPatient) => {
    const userId = syntheticUserId(options, p.index);
    const organizationId = siteId(p.site);
    const actor: Actor = { id: userId, roles: ['PATIENT'], organizationId };
    const profile = await patients.register(
      actor,
      null,
      organizationId,
      syntheticPatientId(userId, config.orgId),
    );
    const resources = toFhir(p, profile.id);
    const stored = await db.getRepository(RecordEntity).countBy({ patientId: profile.id });
    tally.kept += Math.min(stored, resources.length);
    for (const resource of resources.slice(stored)) {
      const record = await records.create(actor, { resource });
      tally.created++;
      if (record.integrity !== IntegrityStatus.VERIFIED) tally.pending++;
    }
    seeded[p.index] = { id: profile.id, userId, organizationId };
    if (++tally.done % step === 0 || tally.done === cohort.patients.length) {
      progress(`  ${tally.done}/${cohort.patients.length} patients`);
    }
  };
  await inParallel(cohort.patients, CONCURRENCY, seedOne);

  progress(
    `created ${tally.created} records, ${tally.kept} were already there` +
      (tally.pending
        ? `; ${tally.pending} are not anchored yet (the API's outbox will anchor them)`
        : ''),
  );
  return { organizations, patients: seeded };
}

/**
 * Starts the app (beside an API already running on the same data dir, on that API's
 * database), seeds, and stops it. Logging is silenced: pino writes to stdout, which the
 * command keeps for its JSON; anything that goes wrong is thrown, and records left
 * unanchored are reported through `progress`.
 */
export async function runSeed(
  config: AppConfig,
  options: SeedOptions,
  progress: SeedProgress = () => undefined,
): Promise<SeedSummary> {
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    databaseUrl = await runningClusterUrl(config.dataDir, 'custodia');
    if (databaseUrl) progress(`using the database of the API running on ${config.dataDir}`);
  }
  const server = await startServer({
    ...config,
    databaseUrl,
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
  });
  try {
    return await seedCohort(server.app, options, progress);
  } finally {
    await server.stop();
  }
}

/**
 * Runs `task` over `items` with at most `limit` in flight. After a failure no new item
 * starts, the ones in flight finish (so the app is not stopped under them), and the first
 * error is thrown.
 */
async function inParallel<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      await task(item).catch((e: unknown) => {
        failed = true;
        throw e;
      });
    }
  };
  const outcomes = await Promise.allSettled(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  const failure = outcomes.find((o) => o.status === 'rejected');
  if (failure) throw failure.reason;
}

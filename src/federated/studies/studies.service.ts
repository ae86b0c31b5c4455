// Studies (what to learn, from which features, with which strategy and privacy) and the
// training nodes that may take part (registered by an administrator with their public key).
// A study's terms are registered on the ledger as it is created; every read of a study goes
// through StudyRegistry, which withholds a row that is not what the ledger registered.
import { checkShownText } from '../../common/shown-text';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { calculateJwkThumbprint, importJWK, JWK } from 'jose';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Actor } from '../../auth';
import { BadUserInputError, ConflictError } from '../../common/errors';
import { OrganizationEntity } from '../../patients';
import { SUPPORTED_FEATURES } from '../model/features';
import { StudyEntity, TrainingNodeEntity } from './study.entity';
import {
  CreateStudyInput,
  ModelPresetEnum,
  RegisterTrainingNodeInput,
  StrategyEnum,
  StudyModel,
  TrainingNodeModel,
} from './study.model';
import { isUuid } from '../../common/ids';
import { BoundedMap } from '../../common/bounded-map';
import { StudyRegistry } from './study-registry';

/** LOINC codes: digits, a hyphen and a check digit (e.g. 2345-7). */
const LOINC = /^\d{1,7}-\d$/;
/** SNOMED CT concept ids: 6 to 18 digits. */
const SNOMED = /^\d{6,18}$/;
const MAX_FEATURES = 64;
/** Studies believed and remembered: their terms never change once registered. */
const STUDY_CACHE = 1_000;

@Injectable()
export class StudiesService implements OnModuleInit {
  private readonly believed = new BoundedMap<string, StudyEntity>(STUDY_CACHE);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: StudyRegistry,
  ) {}

  /** Before anything reads a study (nodes resume rounds at bootstrap): older ones registered. */
  async onModuleInit(): Promise<void> {
    await this.registry.registerLegacy(await this.db.getRepository(StudyEntity).find());
  }

  /**
   * Stores the study and registers its terms on the ledger, in one transaction: a study the
   * ledger refused or never answered for is not kept.
   */
  async create(actor: Actor, input: CreateStudyInput): Promise<StudyModel> {
    const row: StudyEntity = {
      id: randomUUID(),
      ownerId: actor.id,
      createdAt: new Date(),
      ...validateStudy(input),
    };
    await this.db.transaction(async (m) => {
      await m.getRepository(StudyEntity).insert(row);
      await this.registry.register(row);
    });
    return row;
  }

  /**
   * Studies are a public catalogue: patients need them to consent, researchers to run them.
   * Only studies as the ledger registered them are listed.
   */
  async list(): Promise<StudyModel[]> {
    return this.registry.believed(
      await this.db.getRepository(StudyEntity).find({ order: { createdAt: 'DESC', id: 'ASC' } }),
    );
  }

  /** The study, when its row is what the ledger registered; null otherwise (and reported). */
  async get(id: string): Promise<StudyEntity | null> {
    const known = this.believed.get(id);
    if (known) return known;
    if (!isUuid(id)) return null;
    const row = await this.db.getRepository(StudyEntity).findOneBy({ id });
    if (!row) return null;
    const [study] = await this.registry.believed([row]);
    if (study) this.believed.set(id, study);
    return study ?? null;
  }

  async registerNode(actor: Actor, input: RegisterTrainingNodeInput): Promise<TrainingNodeModel> {
    const name = input.name.trim();
    if (name.length < 1 || name.length > 100) {
      throw new BadUserInputError('name must be 1–100 characters', 'input.name');
    }
    if (!(await this.db.getRepository(OrganizationEntity).existsBy({ id: input.organizationId }))) {
      throw new BadUserInputError(
        'organizationId names no known organisation',
        'input.organizationId',
      );
    }
    const jwk = await publicSigningKey(input.publicKeyJwk);
    const keyThumbprint = await calculateJwkThumbprint(jwk, 'sha256');
    const row: TrainingNodeEntity = {
      id: randomUUID(),
      organizationId: input.organizationId,
      name,
      publicKey: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
      keyThumbprint,
      registeredBy: actor.id,
      createdAt: new Date(),
      revokedAt: null,
    };
    try {
      await this.db.getRepository(TrainingNodeEntity).insert(row);
    } catch (e) {
      if ((e as { code?: string }).code === '23505') {
        throw new ConflictError('A training node with this public key is already registered.');
      }
      throw e;
    }
    return row;
  }
}

/** A study's settings, checked field by field, with the defaults filled in. */

/** The largest clip norm a study may set (a model's weights here are a few units). */
export const MAX_CLIP_NORM = 1000;
/** A differentially private study's noise multiplier lies in this range (or is 0). */
export const MIN_NOISE_MULTIPLIER = 0.05;
export const MAX_NOISE_MULTIPLIER = 100;
/** The most noise (standard deviation, noiseMultiplier × clipNorm) a round may add. */
export const MAX_NOISE_STD = 1000;

export function validateStudy(input: CreateStudyInput) {
  const bad = (field: string, message: string) => new BadUserInputError(message, `input.${field}`);
  const title = input.title.trim();
  if (title.length < 1 || title.length > 200) throw bad('title', 'title must be 1–200 characters');
  // Patients consent from the catalogue: its titles read as their researchers wrote them.
  checkShownText(title, 'input.title', 'title', { singleLine: true });
  const features = input.features;
  if (features.length < 1 || features.length > MAX_FEATURES) {
    throw bad('features', `features must list 1–${MAX_FEATURES} LOINC codes`);
  }
  if (features.some((f) => !LOINC.test(f))) {
    throw bad('features', 'features must be LOINC codes such as 2345-7');
  }
  const unsupported = features.find((f) => !SUPPORTED_FEATURES.includes(f));
  if (unsupported) {
    // Nodes standardise each feature on a fixed clinical scale; one without a scale cannot train.
    throw bad(
      'features',
      `feature ${unsupported} has no reference scale; supported: ${SUPPORTED_FEATURES.join(', ')}`,
    );
  }
  if (new Set(features).size !== features.length) throw bad('features', 'features must not repeat');
  if (!SNOMED.test(input.label)) {
    throw bad('label', 'label must be a SNOMED CT concept id such as 44054006');
  }
  const int = (
    field: string,
    value: number | null | undefined,
    dflt: number,
    min: number,
    max: number,
  ) => {
    const v = value ?? dflt;
    if (!Number.isInteger(v) || v < min || v > max)
      throw bad(field, `${field} must be a whole number from ${min} to ${max}`);
    return v;
  };
  const learningRate = input.learningRate ?? 0.1;
  if (!(learningRate > 0 && learningRate <= 10)) {
    throw bad('learningRate', 'learningRate must be above 0 and at most 10');
  }
  const strategy = input.strategy ?? StrategyEnum.FEDAVG;
  const clipNorm = input.clipNorm ?? null;
  const noiseMultiplier = input.noiseMultiplier ?? null;
  // Bounds within which a round can be aggregated and its privacy accounted for: a larger clip
  // or noise buries the model (its weights then pass what an update may hold), and below
  // 0.05 the noise protects nothing the accountant can still put a number on.
  if (clipNorm !== null && !(clipNorm > 0 && clipNorm <= MAX_CLIP_NORM)) {
    throw bad('clipNorm', `clipNorm must be above 0 and at most ${MAX_CLIP_NORM}`);
  }
  if (noiseMultiplier !== null) {
    if (!(
      noiseMultiplier === 0 ||
      (noiseMultiplier >= MIN_NOISE_MULTIPLIER && noiseMultiplier <= MAX_NOISE_MULTIPLIER)
    )) {
      throw bad(
        'noiseMultiplier',
        `noiseMultiplier must be 0 (no noise) or from ${MIN_NOISE_MULTIPLIER} to ${MAX_NOISE_MULTIPLIER}`,
      );
    }
    if (clipNorm !== null && noiseMultiplier * clipNorm > MAX_NOISE_STD) {
      throw bad(
        'noiseMultiplier',
        `noiseMultiplier × clipNorm (the noise's standard deviation) must be at most ${MAX_NOISE_STD}`,
      );
    }
    if (noiseMultiplier > 0 && clipNorm === null) {
      throw bad('clipNorm', 'differential privacy needs a clipNorm to bound each update');
    }
    if (noiseMultiplier > 0 && strategy === StrategyEnum.TRIMMED_MEAN) {
      throw bad(
        'strategy',
        "TRIMMED_MEAN cannot be made differentially private (its sensitivity isn't a mean's)",
      );
    }
  }
  return {
    title,
    features: [...features],
    label: input.label,
    strategy,
    model: input.model ?? ModelPresetEnum.LOGISTIC,
    localEpochs: int('localEpochs', input.localEpochs, 1, 1, 100),
    learningRate,
    batchSize: int('batchSize', input.batchSize, 32, 1, 4096),
    minNodes: int('minNodes', input.minNodes, 2, 1, 100),
    roundDeadlineMs: int('roundDeadlineMs', input.roundDeadlineMs, 60_000, 1_000, 86_400_000),
    clipNorm,
    noiseMultiplier,
  };
}

/** An EC P-256 public key (no private part), as the node's manifests are ES256-signed. */
async function publicSigningKey(value: unknown): Promise<JWK> {
  const bad = (m: string) => new BadUserInputError(m, 'input.publicKeyJwk');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('publicKeyJwk must be a JWK object');
  }
  const jwk = value as JWK;
  if ('d' in jwk) throw bad('publicKeyJwk holds a private key: send the public key only');
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256')
    throw bad('publicKeyJwk must be an EC P-256 key (ES256)');
  try {
    await importJWK(jwk, 'ES256');
  } catch {
    throw bad('publicKeyJwk is not a valid EC P-256 public key');
  }
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

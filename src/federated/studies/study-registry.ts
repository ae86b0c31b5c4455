// Which study rows to believe. A study's terms (owner, features, label, model, ...) are
// registered on the ledger as one hash when it is created (training.RegisterStudy); a row is
// believed only when it hashes to what the ledger registered for its id. A row changed in the
// database (its features widened, its owner swapped) or one the ledger never registered is
// withheld everywhere a study is read, and reported: what a patient's consent to a study
// covers, and who may run it, are what the ledger holds, never what one database says.
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { StudyRegistration } from '@custodia/chaincode';
import { BoundedMap } from '../../common/bounded-map';
import { LedgerUnavailableError, NotFoundError } from '../../common/errors';
import { Ledger, LEDGER } from '../../ledger';
import { IntegrityMonitor } from '../../observability';
import { registrationProblem, StudyTerms, studyTermsHash } from './study-terms';

/** Registrations remembered (a few hundred bytes each); they never change once written. */
const REMEMBERED = 10_000;

@Injectable()
export class StudyRegistry {
  private readonly logger = new Logger(StudyRegistry.name);
  private readonly registrations = new BoundedMap<string, StudyRegistration>(REMEMBERED);

  constructor(
    @Inject(LEDGER) private readonly ledger: Ledger,
    private readonly integrity: IntegrityMonitor,
  ) {}

  /**
   * Registers the study's terms on the ledger; its transaction id. `legacy`: a study created
   * before studies were registered, taken as the database holds it (see registerLegacy).
   */
  async register(study: StudyTerms, { legacy = false } = {}): Promise<string> {
    const { txId, result } = await this.ledger.submit<StudyRegistration>(
      'training',
      'RegisterStudy',
      [
        JSON.stringify({
          studyId: study.id,
          ownerId: study.ownerId,
          termsHash: studyTermsHash(study),
          ...(legacy ? { legacy: true } : {}),
        }),
      ],
    );
    this.registrations.set(study.id, result);
    return txId;
  }

  /** What the ledger registered for the study, or null when it registered nothing. */
  async registration(studyId: string): Promise<StudyRegistration | null> {
    const known = this.registrations.get(studyId);
    if (known) return known;
    const held = await registeredStudy(this.ledger, studyId);
    if (held) this.registrations.set(studyId, held);
    return held;
  }

  /**
   * The rows whose terms are those the ledger registered, in their order; each other row is
   * reported (by id only) and left out. Throws when the ledger cannot be read.
   */
  async believed<T extends StudyTerms>(rows: readonly T[]): Promise<T[]> {
    const held = await Promise.all(rows.map((r) => this.registration(r.id)));
    return rows.filter((row, i) => {
      const problem = registrationProblem(row, held[i]);
      if (problem) {
        this.integrity.report('study', `study withheld: ${problem}`, { studyId: row.id });
      }
      return problem === null;
    });
  }

  /**
   * At start-up: studies from before registration are registered as the database holds them
   * (each start tries those still unregistered). The ledger accepts this from an organisation only until it has registered a study
   * of its own, so a row forged later is not registered this way (it stays withheld).
   */
  async registerLegacy(rows: readonly StudyTerms[]): Promise<void> {
    let registered = 0;
    for (const row of rows) {
      try {
        if (await this.registration(row.id)) continue;
        await this.register(row, { legacy: true });
        registered++;
      } catch (e) {
        // Refused (this organisation registers its studies as it creates them: the row
        // appeared since), or the ledger is down: the row stays withheld, and is reported
        // where it is read.
        this.logger.warn(
          { studyId: row.id, errorType: (e as Error).name },
          'study from before registration not registered',
        );
        // Down: the next start tries again, rather than this one waiting on every row.
        if (e instanceof LedgerUnavailableError) break;
      }
    }
    if (registered)
      this.logger.warn({ studies: registered }, 'legacy studies registered on the ledger');
  }
}

/** What the ledger registered for the study (GetStudy), or null when it registered nothing. */
export function registeredStudy(
  ledger: Pick<Ledger, 'evaluate'>,
  studyId: string,
): Promise<StudyRegistration | null> {
  return ledger
    .evaluate<StudyRegistration>('training', 'GetStudy', [studyId])
    .catch((e: unknown) => {
      if (e instanceof NotFoundError) return null;
      throw e;
    });
}

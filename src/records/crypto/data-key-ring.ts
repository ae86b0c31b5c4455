// Holds each patient's data key: created on first use, stored wrapped by the KEK, unwrapped
// on demand and kept in a bounded in-memory cache (unwrapping is cheap; the row read is not).
// Destroying a patient's keys (crypto-shredding) makes every ciphertext of theirs unreadable.
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createSecretKey, KeyObject, randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In, IsNull } from 'typeorm';
import { BoundedMap } from '../../common/bounded-map';
import { NotFoundError } from '../../common/errors';
import { DataKeyEntity } from './data-key.entity';
import { newDataKey, unwrapDataKey, wrapDataKey } from './key-wrap';

export interface DataKey {
  id: string;
  key: KeyObject;
}

/** Thrown when a key is missing or destroyed: the data it protected is gone for good. */
export class DataKeyUnavailableError extends Error {
  constructor(readonly keyId: string) {
    super(`data key ${keyId} is missing or destroyed`);
    this.name = 'DataKeyUnavailableError';
  }
}

/**
 * Thrown when a key is asked for a patient who erased their data (through another request or
 * process, so this one did not know): nothing more may be stored for them.
 */
export class PatientErasedError extends NotFoundError {
  constructor() {
    super(
      'This patient profile was erased, so nothing was stored; call registerPatient to start a new one.',
    );
  }
}

/** The key-encryption key, as a KeyObject (see records/crypto/key-wrap). */
export const KEK = Symbol('KEK');

const CACHE_LIMIT = 10_000;

@Injectable()
export class DataKeyRing {
  private readonly cache = new BoundedMap<string, { patientId: string; key: KeyObject }>(
    CACHE_LIMIT,
  );
  /**
   * Each patient's live key id, once read or created: a patient's live key changes only when
   * erasure destroys it (which forgets it here), like the identity links PatientsService keeps.
   */
  private readonly live = new BoundedMap<string, string>(CACHE_LIMIT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(KEK) private readonly kek: KeyObject,
  ) {}

  /**
   * The patient's live key if this process knows it already (no database round trip), else
   * undefined: then `liveKey` reads or creates it.
   */
  knownLiveKey(patientId: string): DataKey | undefined {
    const id = this.live.get(patientId);
    const cached = id === undefined ? undefined : this.cache.get(id);
    return cached && cached.patientId === patientId ? { id: id!, key: cached.key } : undefined;
  }

  /**
   * The patient's live key, created (inside `manager`'s transaction, if given) when absent.
   * Inside a transaction the key stays live until it commits: the key row is locked in share
   * mode, so an erasure (which destroys the key, then deletes the patient's records) waits, and
   * then deletes what the transaction wrote. A patient already erased gets no new key
   * (PatientErasedError).
   *
   * Creating the key locks the patient's row for update (not in share mode): the records the
   * transaction then writes move the patient's `records_version` (a trigger updates that row),
   * and two first writes for one patient that both held it in share mode would each wait for
   * the other to let go (a deadlock). This way the second waits for the first to commit, then
   * takes the key it made. Lock order, for every writer and erasure alike: data key, record,
   * patient — or, when the key is new, patient first (no other writer can hold its key yet).
   */
  async liveKey(
    patientId: string,
    manager: EntityManager = this.db.manager,
    proposed?: DataKey,
  ): Promise<DataKey> {
    // `own`: written by this very transaction, so not yet committed (no one else sees it).
    const [existing] = await manager.query<{ id: string; wrapped_key: Buffer; own: boolean }[]>(
      `SELECT id, wrapped_key, coalesce(xmin = xid(pg_current_xact_id_if_assigned()), false) AS own
       FROM data_keys WHERE patient_id = $1 AND destroyed_at IS NULL FOR SHARE`,
      [patientId],
    );
    if (existing) {
      const key = this.unwrap({
        id: existing.id,
        patientId,
        wrappedKey: existing.wrapped_key,
      } as DataKeyEntity);
      if (!existing.own) this.live.set(patientId, existing.id);
      return { id: existing.id, key };
    }
    const id = proposed?.id ?? randomUUID();
    const raw = proposed ? proposed.key.export() : newDataKey();
    try {
      // One live key per patient (a partial unique index): a concurrent creator wins. Never
      // for an erased patient: erasure updates the patient row, which this locks.
      const rows: unknown[] = await manager.query(
        `INSERT INTO data_keys (id, patient_id, wrapped_key)
         SELECT $1::uuid, p.id, $3::bytea FROM patients p
         WHERE p.id = $2 AND p.erased_at IS NULL FOR NO KEY UPDATE
         ON CONFLICT DO NOTHING RETURNING id`,
        [id, patientId, wrapDataKey(this.kek, raw, id, patientId)],
      );
      if (rows.length === 0) {
        const [patient] = await manager.query<{ erased: boolean }[]>(
          'SELECT erased_at IS NOT NULL AS erased FROM patients WHERE id = $1',
          [patientId],
        );
        if (!patient || patient.erased) throw new PatientErasedError();
        return this.liveKey(patientId, manager, proposed);
      }
      const key = createSecretKey(raw);
      this.cache.set(id, { patientId, key });
      // Known as the patient's live key only once it is committed: inside a caller's
      // transaction it is not yet, and another request that took it from `knownLiveKey`
      // would write rows no one else can see the key of (refused as if the patient were
      // erased), or keep a key that never was, should the transaction roll back. The
      // patient's next write reads it back.
      if (manager === this.db.manager) this.live.set(patientId, id);
      return { id, key };
    } finally {
      raw.fill(0);
    }
  }

  /**
   * Many patients' live keys at once: those this process knows, the rest read in one query
   * (created one by one, should a patient have none yet). For a training node sealing a round's
   * reasons for thousands of patients, one round trip instead of one per patient.
   */
  async liveKeys(patientIds: readonly string[]): Promise<Map<string, DataKey>> {
    const keys = await this.existingLiveKeys(patientIds);
    for (const p of new Set(patientIds)) if (!keys.has(p)) keys.set(p, await this.liveKey(p));
    return keys;
  }

  /**
   * A new key, stored nowhere: a caller that must derive something from a patient's key before
   * it may write anything (importBundle's record ids) gives it to `liveKey` later, which stores
   * it if the patient still has none (and otherwise returns theirs: compare the ids).
   */
  unsavedKey(): DataKey {
    const raw = newDataKey();
    try {
      return { id: randomUUID(), key: createSecretKey(raw) };
    } finally {
      raw.fill(0);
    }
  }

  /**
   * The patient's live key, or null when they have none (no record was ever sealed for them,
   * or their keys were destroyed): unlike `liveKey`, never creates one.
   */
  async existingLiveKey(patientId: string): Promise<DataKey | null> {
    const id = this.live.get(patientId);
    const cached = id ? this.cache.get(id) : undefined;
    if (id && cached?.patientId === patientId) return { id, key: cached.key };
    const row = await this.db
      .getRepository(DataKeyEntity)
      .findOneBy({ patientId, destroyedAt: IsNull() });
    if (!row) return null;
    this.live.set(patientId, row.id);
    return { id: row.id, key: this.unwrap(row) };
  }

  /**
   * The live keys of those among `patientIds` who have one, in one query at most (a page of
   * patients costs one round trip, not one per patient); like `existingLiveKey`, never creates.
   */
  async existingLiveKeys(patientIds: readonly string[]): Promise<Map<string, DataKey>> {
    const out = new Map<string, DataKey>();
    const unknown: string[] = [];
    for (const patientId of new Set(patientIds)) {
      const known = this.knownLiveKey(patientId);
      if (known) out.set(patientId, known);
      else unknown.push(patientId);
    }
    if (!unknown.length) return out;
    const rows = await this.db
      .getRepository(DataKeyEntity)
      .findBy({ patientId: In(unknown), destroyedAt: IsNull() });
    for (const row of rows) {
      try {
        out.set(row.patientId, { id: row.id, key: this.unwrap(row) });
        this.live.set(row.patientId, row.id);
      } catch {
        // Left out: a caller asking `liveKey` for it meets the failure there.
      }
    }
    return out;
  }

  /**
   * Reads, in one query, the keys among `keyIds` that this process does not hold yet, so that
   * `key` then answers each from memory. A key missing, destroyed or not unwrapping is left
   * out: `key` reports it as it would have.
   */
  async preload(keyIds: readonly string[]): Promise<void> {
    const missing = [...new Set(keyIds)].filter((id) => !this.cache.get(id));
    if (!missing.length) return;
    const rows = await this.db.getRepository(DataKeyEntity).findBy({ id: In(missing) });
    for (const row of rows) {
      try {
        this.unwrap(row);
      } catch {
        // `key` reads it again and throws then, for its caller to handle.
      }
    }
  }

  /** The key that sealed a record, checked to belong to `patientId`. */
  async key(keyId: string, patientId: string): Promise<KeyObject> {
    const cached = this.cache.get(keyId);
    if (cached) {
      if (cached.patientId !== patientId) throw new DataKeyUnavailableError(keyId);
      return cached.key;
    }
    const row = await this.db.getRepository(DataKeyEntity).findOneBy({ id: keyId });
    if (!row || row.patientId !== patientId) throw new DataKeyUnavailableError(keyId);
    return this.unwrap(row);
  }

  /** Forgets what this process knows of the patient's keys, once they are destroyed (erasure). */
  forgetPatient(patientId: string): void {
    this.live.delete(patientId);
    for (const [id, entry] of [...this.cache]) {
      if (entry.patientId === patientId) this.cache.delete(id);
    }
  }

  private unwrap(row: DataKeyEntity): KeyObject {
    const cached = this.cache.get(row.id);
    if (cached && cached.patientId === row.patientId) return cached.key;
    if (!row.wrappedKey) throw new DataKeyUnavailableError(row.id);
    const key = unwrapDataKey(this.kek, row.wrappedKey, row.id, row.patientId);
    this.cache.set(row.id, { patientId: row.patientId, key });
    return key;
  }
}

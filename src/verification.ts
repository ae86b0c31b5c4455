// What `custodia verify-ledger` checks, as one function: the embedded ledger's blocks, world
// state and history (on Fabric, its peers validate the blocks, and the rest is read from them); the access log's chain against the head anchored on the ledger; every
// PERMIT in the log against the grant or emergency the ledger held; the deployed models and AI
// decisions stored against their ledger entries; the studies against the terms the ledger
// registered for them; and the consent projection and the signed-only
// settings against the ledger's grants and keyrings (repaired where they drifted: the ledger is
// the only authority). It also lists the PERMITs that rest on grants the patient did not sign.
import { KeyObject } from 'node:crypto';
import { Pool } from 'pg';
import { auditChainId } from './audit/audit-chain';
import type { PermitCheck } from './audit/justify';
import { poolRows, verifyAccessLogAgainstLedger } from './audit/verify';
import { CONSENT_PROJECTOR } from './consent/consent.projector';
import { GrantAuthenticity } from './consent/grant-authenticity';
import {
  ProjectionDrift,
  ProjectionReconciler,
  ReconcileReport,
} from './consent/projection-reconciler';
import { SettingsReconciler, SettingsReport } from './consent/settings-reconciler';
import { verifyEmergencyRows } from './consent/verify-emergencies';
import { verifyDecisionsAgainstLedger } from './decisions/verify-decisions';
import { verifyStudyRows } from './federated/studies/verify-studies';
import type { Ledger } from './ledger';
import { EmbeddedLedger } from './ledger/embedded/embedded-ledger';
import { embeddedHeadFile } from './ledger/embedded/head-file';
import { LedgerSeal } from './ledger/embedded/seal';
import { verifyEmbeddedLedger } from './ledger/embedded/verify';
import { RowAuthenticator } from './records/crypto';
import { verifyRecordAnchors } from './records/verify-anchors';

export interface Verification {
  ok: boolean;
  /** What was checked, then one line per problem. */
  lines: string[];
}

const MAX_LISTED = 20;

/**
 * A Fabric ledger as verify-ledger reads it: the port, and where a transaction is (to
 * tell a grant the projector has not reached from a deleted row).
 */
export interface FabricLedgerReader extends Ledger {
  positionOfTransaction(txId: string): Promise<{ block: number; tx: number } | null>;
}

export async function verifyAll(
  pool: Pool,
  organization: string,
  /** With the KEK, the ledger's seals and the consent projection are checked too. */
  kek?: KeyObject,
  /** The instance whose access log this database holds (INSTANCE_ID); none for the default. */
  instanceId?: string,
  /**
   * On Fabric, the channel (whose blocks its peers validate, not walked here) checked through;
   * without it, the embedded ledger in this database, its blocks walked.
   */
  fabric?: FabricLedgerReader,
  /**
   * Where the API keeps the embedded ledger's head (its data directory), checked with the KEK:
   * a chain that ends before the head the API saw committed was rolled back.
   */
  dataDir?: { dataDir: string; databaseUrl?: string },
): Promise<Verification> {
  const seal = kek ? new LedgerSeal(new RowAuthenticator(kek)) : undefined;
  const ledger = fabric ? null : await verifyEmbeddedLedger(pool, seal);
  let embedded: Ledger;
  if (fabric) embedded = fabric;
  else {
    const local = new EmbeddedLedger(pool, {
      organization,
      seal,
      headFile: seal && dataDir ? embeddedHeadFile(dataDir, seal) : undefined,
    });
    // With the KEK, what is read from the ledger below is what its blocks wrote (a world-state
    // row put back from before a revocation is not believed; the walk's own breaks are
    // reported above), and the chain must reach the head the API recorded.
    if (seal) {
      if (ledger?.versions) local.adopt(ledger.versions);
      const rolledBack = await local.rolledBack();
      if (rolledBack) ledger?.problems.unshift(rolledBack);
    }
    embedded = local;
  }
  const { permits, ...audit } = await verifyAccessLogAgainstLedger(poolRows(pool), embedded, {
    organization,
    chainId: auditChainId(instanceId),
  });
  const decisions = await verifyDecisionsAgainstLedger(poolRows(pool), embedded);
  const anchors = await verifyRecordAnchors(poolRows(pool), embedded);
  const studies = await verifyStudyRows(poolRows(pool), embedded);
  const emergencies = await verifyEmergencyRows(
    poolRows(pool),
    embedded,
    kek ? new RowAuthenticator(kek) : undefined,
  );
  let projection: ReconcileReport | null = null;
  let settings: SettingsReport | null = null;
  const unreadable: string[] = [];
  if (kek) {
    try {
      projection = await reconcileProjection(pool, embedded, kek);
    } catch {
      unreadable.push(
        "consent projection not compared: the ledger's grants could not be read (see the problems above)",
      );
    }
    try {
      settings = await reconcileSettings(pool, embedded, kek);
    } catch {
      unreadable.push(
        "signed-only settings not compared: the ledger's keyrings could not be read (see the problems above)",
      );
    }
  }
  // Grants the ledger wrote after the projector's checkpoint are not missing but not yet
  // applied (an API stopped, or killed, before its projector got to them): reported, applied
  // by the repair, and no break.
  const behind = projection ? await notYetProjected(pool, projection.missingTxIds, fabric) : null;
  if (projection && behind?.ids.length) {
    const late = new Set(behind.ids);
    projection = { ...projection, missing: projection.missing.filter((id) => !late.has(id)) };
  }
  const problems = [
    ...(ledger?.problems ?? []),
    ...audit.problems,
    ...firstListed(permits.problems, 'unjustified accesses'),
    ...firstListed(decisions.problems, 'AI decision problems'),
    ...firstListed(anchors.problems, 'record anchor problems'),
    ...firstListed(emergencies.problems, 'emergency declaration problems'),
    ...firstListed(studies.problems, 'study problems'),
    ...(projection ? driftProblems(projection, GRANT_DRIFT) : []),
    ...(projection?.revocationsLost.length
      ? [
          `the ledger holds ${projection.revocationsLost.length} grant(s) ACTIVE that this API saw revoked (${projection.revocationsLost.slice(0, MAX_LISTED).join(', ')}): the ledger lost their revocations (restored from a backup, or rolled back); the revocations are kept here`,
        ]
      : []),
    ...(settings ? driftProblems(settings, SETTING_DRIFT) : []),
    ...unreadable,
  ];
  const lines = [
    ...(ledger
      ? [
          `Blocks: ${ledger.blocks} (${ledger.transactions} transactions) walked; hash chain checked.`,
          `World state: ${ledger.stateKeys} keys; history: ${ledger.historyRows} rows; both replayed from the blocks and compared.`,
        ]
      : [
          "Blocks: on Fabric, kept and validated by the channel's peers (each endorsement and block checked by them), not walked here; everything below read from them.",
        ]),
    `Access log: ${audit.eventsChecked} events walked along their hash chain; ` +
      (audit.anchoredThrough === null
        ? 'the ledger holds no anchored head yet'
        : `anchored on the ledger through event ${audit.anchoredThrough}`) +
      `; ${audit.unanchoredEvents} event(s) not yet anchored, so not yet provable.`,
    `Permitted accesses: ${permits.justified} of ${permits.permits} justified by a grant or emergency on the ledger (or the patient's own account); ${permits.patientSigned} under grants the patient signed.`,
    ...unsignedLines(permits),
    `AI decisions: ${decisions.deployments} deployed model(s) and ${decisions.decisions} decision(s) compared with the ledger.`,
    `Record anchors: ${anchors.versions} record version(s); ${anchors.anchored} anchored as stored (patient and content hash), ${anchors.pending} not yet anchored; ${anchors.ledgerRecords} record(s) anchored on the ledger for patients held here, compared with storage.`,
    `Emergency declarations: ${emergencies.rows - emergencies.legacy} compared with the ledger${kek ? ' and authenticated' : ''}` +
      (emergencies.legacy
        ? ` (${emergencies.legacy} from before declarations were on the ledger, which open nothing)`
        : '') +
      '.',
    `Studies: ${studies.rows} compared with the terms registered on the ledger` +
      (studies.legacy
        ? ` (${studies.legacy} registered at the upgrade, as the database then held them)`
        : '') +
      '.',
    projection
      ? `Consent projection: ${projection.projectedRows} rows compared with ${projection.ledgerGrants} grants on the ledger.`
      : `Consent projection: not compared (${kek ? 'the ledger could not be read' : 'no KEK given'}).`,
    ...(behind?.ids.length
      ? [
          `Consent projection: ${behind.ids.length} grant(s) written on the ledger after the projector's checkpoint (${behind.checkpoint}) were not yet applied (the API applies them when it runs); applied now.`,
        ]
      : []),
    settings
      ? `Signed-only settings: ${settings.storedRows} rows compared with ${settings.ledgerSettings} settings on the ledger.`
      : `Signed-only settings: not compared (${kek ? 'the ledger could not be read' : 'no KEK given'}).`,
    ...problems.map((p) => `  BROKEN: ${p}`),
    problems.length
      ? `Verification FAILED: ${problemCount(problems)} problem(s).`
      : 'Ledger and access log verified: no breaks.',
  ];
  return { ok: problems.length === 0, lines };
}

/**
 * Of the grants the projection lacks, those whose transaction comes after the projector's
 * checkpoint (all of them when it has none yet): the projector has not reached them. A grant
 * at or before the checkpoint was applied once, so its absence is a deleted row.
 */
async function notYetProjected(
  pool: Pool,
  missingTxIds: ReadonlyMap<string, string>,
  fabric?: FabricLedgerReader,
): Promise<{ ids: string[]; checkpoint: string }> {
  if (!missingTxIds.size) return { ids: [], checkpoint: '' };
  const { rows: marks } = await pool.query<{ block_number: string; tx_index: number }>(
    'SELECT block_number, tx_index FROM ledger_checkpoints WHERE consumer = $1',
    [CONSENT_PROJECTOR],
  );
  const mark = marks[0] ? { block: Number(marks[0].block_number), tx: marks[0].tx_index } : null;
  const checkpoint = mark ? `block ${mark.block}, transaction ${mark.tx}` : 'none yet';
  const txIds = [...new Set(missingTxIds.values())];
  let at: Map<string, { block: number; tx: number }>;
  if (fabric) {
    const places = await Promise.all(txIds.map((id) => fabric.positionOfTransaction(id)));
    at = new Map(
      txIds.flatMap((id, i) => {
        const place = places[i];
        return place ? [[id, place] as const] : [];
      }),
    );
  } else {
    // All of a transaction's history rows share its block and index.
    const { rows: written } = await pool.query<{ tx_id: string; block: string; tx: number }>(
      `SELECT DISTINCT tx_id, block_number AS block, tx_index AS tx FROM ledger_history
       WHERE tx_id = ANY($1::text[])`,
      [txIds],
    );
    at = new Map(written.map((w) => [w.tx_id, { block: Number(w.block), tx: w.tx }]));
  }
  const ids = [...missingTxIds.keys()].filter((id) => {
    const p = at.get(missingTxIds.get(id)!);
    if (!p) return false;
    return !mark || p.block > mark.block || (p.block === mark.block && p.tx > mark.tx);
  });
  return { ids, checkpoint };
}

async function reconcileProjection(
  pool: Pool,
  ledger: Ledger,
  kek: KeyObject,
): Promise<ReconcileReport> {
  const rows = poolRows(pool);
  const db = { query: (text: string, params: unknown[] = []) => rows(text, params) };
  const authenticity = new GrantAuthenticity(new RowAuthenticator(kek));
  return new ProjectionReconciler(db, ledger, authenticity).run({ repair: true });
}

async function reconcileSettings(
  pool: Pool,
  ledger: Ledger,
  kek: KeyObject,
): Promise<SettingsReport> {
  const rows = poolRows(pool);
  const db = { query: (text: string, params: unknown[] = []) => rows(text, params) };
  return new SettingsReconciler(db, ledger, new RowAuthenticator(kek)).run({ repair: true });
}

/**
 * The justified PERMITs under grants the patient did not sign: their count, then one line per
 * grant (the patient, how many PERMITs, their event numbers), for an auditor to follow up.
 * Not problems: a patient who never turned signed-only on consents through their organisation.
 */
function unsignedLines(permits: PermitCheck): string[] {
  const total = [...permits.unsigned.values()].reduce((n, u) => n + u.permits, 0);
  if (!total) return [];
  const grants = [...permits.unsigned].slice(0, MAX_LISTED).map(([id, u]) => {
    const more = u.permits > u.seqs.length ? `, … (${u.permits - u.seqs.length} more)` : '';
    return `  UNSIGNED: grant ${id} (patient ${u.patientId}): ${u.permits} PERMIT(s), access events ${u.seqs.join(', ')}${more}`;
  });
  const rest = permits.unsigned.size - grants.length;
  return [
    `Permitted accesses under grants the patient did not sign: ${total}, under ${permits.unsigned.size} grant(s):`,
    ...grants,
    ...(rest > 0 ? [`  …and ${rest} more unsigned grant(s)`] : []),
  ];
}

interface DriftWords {
  /** What drifted, as the problem lines name it. */
  what: string;
  /** What one entry is, plural. */
  entries: string;
}
const GRANT_DRIFT: DriftWords = { what: 'consent projection', entries: 'grant(s)' };
const SETTING_DRIFT: DriftWords = {
  what: 'signed-only settings table',
  entries: 'patient setting(s)',
};

/** The first MAX_LISTED problems, then how many more there are of `what`. */
/** Problems in all, those left unlisted ("…and N more …") counted as N. */
function problemCount(lines: readonly string[]): number {
  return lines.reduce((n, line) => n + Number(/^…and (\d+) more /.exec(line)?.[1] ?? 1), 0);
}

function firstListed(problems: readonly string[], what: string): string[] {
  const more = problems.length - MAX_LISTED;
  return more > 0 ? [...problems.slice(0, MAX_LISTED), `…and ${more} more ${what}`] : [...problems];
}

function driftProblems(r: ProjectionDrift & { repaired: boolean }, w: DriftWords): string[] {
  const list = (ids: string[]) =>
    ids.slice(0, MAX_LISTED).join(', ') + (ids.length > MAX_LISTED ? ', …' : '');
  const repaired = r.repaired ? '; repaired from the ledger' : '';
  const lines: string[] = [];
  if (r.missing.length) {
    lines.push(
      `${w.what} lacks ${r.missing.length} ${w.entries} the ledger holds (${list(r.missing)})${repaired}`,
    );
  }
  if (r.extra.length) {
    lines.push(
      `${w.what} holds ${r.extra.length} ${w.entries} the ledger never wrote (${list(r.extra)})${repaired}`,
    );
  }
  if (r.changed.length) {
    lines.push(
      `${w.what} has ${r.changed.length} ${w.entries} that differ from the ledger (${list(r.changed)})${repaired}`,
    );
  }
  return lines;
}

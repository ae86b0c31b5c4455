// What `custodia verify-ledger` checks, as one function: the embedded ledger's blocks, world
// state and history; the access log's chain against the head anchored on the ledger; every
// PERMIT in the log against the grant or emergency the ledger held; the deployed models and AI
// decisions stored against their ledger entries; and the consent
// projection against the ledger's grants (repaired where it drifted: the ledger is the only
// authority).
import { KeyObject } from 'node:crypto';
import { Pool } from 'pg';
import { auditChainId } from './audit/audit-chain';
import { poolRows, verifyAccessLogAgainstLedger } from './audit/verify';
import { GrantAuthenticity } from './consent/grant-authenticity';
import { ProjectionReconciler, ReconcileReport } from './consent/projection-reconciler';
import { verifyDecisionsAgainstLedger } from './decisions/verify-decisions';
import { EmbeddedLedger } from './ledger/embedded/embedded-ledger';
import { LedgerSeal } from './ledger/embedded/seal';
import { verifyEmbeddedLedger } from './ledger/embedded/verify';
import { RowAuthenticator } from './records/crypto';

export interface Verification {
  ok: boolean;
  /** What was checked, then one line per problem. */
  lines: string[];
}

const MAX_LISTED = 20;

export async function verifyAll(
  pool: Pool,
  organization: string,
  /** With the KEK, the ledger's seals and the consent projection are checked too. */
  kek?: KeyObject,
  /** The instance whose access log this database holds (INSTANCE_ID); none for the default. */
  instanceId?: string,
): Promise<Verification> {
  const seal = kek ? new LedgerSeal(new RowAuthenticator(kek)) : undefined;
  const ledger = await verifyEmbeddedLedger(pool, seal);
  const embedded = new EmbeddedLedger(pool, { organization, seal });
  const { permits, ...audit } = await verifyAccessLogAgainstLedger(poolRows(pool), embedded, {
    organization,
    chainId: auditChainId(instanceId),
  });
  const decisions = await verifyDecisionsAgainstLedger(poolRows(pool), embedded);
  let projection: ReconcileReport | null = null;
  const unreadable: string[] = [];
  if (kek) {
    try {
      projection = await reconcileProjection(pool, embedded, kek);
    } catch {
      unreadable.push(
        "consent projection not compared: the ledger's grants could not be read (see the problems above)",
      );
    }
  }
  const problems = [
    ...ledger.problems,
    ...audit.problems,
    ...permits.problems.slice(0, MAX_LISTED),
    ...(permits.problems.length > MAX_LISTED
      ? [`…and ${permits.problems.length - MAX_LISTED} more unjustified accesses`]
      : []),
    ...decisions.problems.slice(0, MAX_LISTED),
    ...(decisions.problems.length > MAX_LISTED
      ? [`…and ${decisions.problems.length - MAX_LISTED} more AI decision problems`]
      : []),
    ...(projection ? projectionProblems(projection) : []),
    ...unreadable,
  ];
  const lines = [
    `Blocks: ${ledger.blocks} (${ledger.transactions} transactions) walked; hash chain checked.`,
    `World state: ${ledger.stateKeys} keys; history: ${ledger.historyRows} rows; both replayed from the blocks and compared.`,
    `Access log: ${audit.eventsChecked} events walked along their hash chain; ` +
      (audit.anchoredThrough === null
        ? 'the ledger holds no anchored head yet'
        : `anchored on the ledger through event ${audit.anchoredThrough}`) +
      `; ${audit.unanchoredEvents} event(s) not yet anchored, so not yet provable.`,
    `Permitted accesses: ${permits.justified} of ${permits.permits} justified by a grant or emergency on the ledger (or the patient's own account); ${permits.patientSigned} under grants the patient signed.`,
    `AI decisions: ${decisions.deployments} deployed model(s) and ${decisions.decisions} decision(s) compared with the ledger.`,
    projection
      ? `Consent projection: ${projection.projectedRows} rows compared with ${projection.ledgerGrants} grants on the ledger.`
      : `Consent projection: not compared (${kek ? 'the ledger could not be read' : 'no KEK given'}).`,
    ...problems.map((p) => `  BROKEN: ${p}`),
    problems.length
      ? `Verification FAILED: ${problems.length} problem(s).`
      : 'Ledger and access log verified: no breaks.',
  ];
  return { ok: problems.length === 0, lines };
}

async function reconcileProjection(
  pool: Pool,
  ledger: EmbeddedLedger,
  kek: KeyObject,
): Promise<ReconcileReport> {
  const rows = poolRows(pool);
  const db = { query: (text: string, params: unknown[] = []) => rows(text, params) };
  const authenticity = new GrantAuthenticity(new RowAuthenticator(kek));
  return new ProjectionReconciler(db, ledger, authenticity).run({ repair: true });
}

function projectionProblems(r: ReconcileReport): string[] {
  const list = (ids: string[]) =>
    ids.slice(0, MAX_LISTED).join(', ') + (ids.length > MAX_LISTED ? ', …' : '');
  const repaired = r.repaired ? '; repaired from the ledger' : '';
  const lines: string[] = [];
  if (r.missing.length) {
    lines.push(
      `consent projection lacks ${r.missing.length} grant(s) the ledger holds (${list(r.missing)})${repaired}`,
    );
  }
  if (r.extra.length) {
    lines.push(
      `consent projection holds ${r.extra.length} grant(s) the ledger never wrote (${list(r.extra)})${repaired}`,
    );
  }
  if (r.changed.length) {
    lines.push(
      `consent projection has ${r.changed.length} grant(s) that differ from the ledger (${list(r.changed)})${repaired}`,
    );
  }
  return lines;
}

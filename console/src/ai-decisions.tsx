// AI risk assessments in the console, the pieces every role's page shares: the deployed models
// by name, and the decisions about a patient, page by page, each verifiable against the ledger.
// The pages: patient-ai-decisions.tsx, clinician-assess.tsx, deployments.tsx (researcher).
import { useEffect, useMemo, useState } from 'react';
import { ApiError, gql } from './api';
import { namedCode } from './clinical-codes';
import { ErrorNotice, formatTime, short, useAction, useLoad } from './common';
import { quantityText } from './records';

export interface DeployedModel {
  id: string;
  runId: string;
  studyId: string;
  modelHash: string;
  features: string[];
  label: string;
  auc: number | null;
  epsilon: number | null;
  deployedAt: string;
  ledgerTxId: string;
}

export const DEPLOYED_MODEL_FIELDS = `id runId studyId modelHash features label auc epsilon deployedAt ledgerTxId`;

/** One input of a decision as the API answers it (AiDecision.inputs). */
interface DecisionInput {
  code: string;
  display?: string;
  value: number;
  unit: string;
  source: { recordId: string; version: number; resourceType: string };
}

export interface AiDecision {
  id: string;
  modelId: string;
  modelHash: string;
  actorId: string;
  probability: number;
  inputs: { asOf: string; features: DecisionInput[] };
  inputCommitment: string;
  ledgerTxId: string;
  createdAt: string;
}

export const DECISION_FIELDS = `id modelId modelHash actorId probability inputs inputCommitment ledgerTxId createdAt`;

/** Decisions fetched per page of the list. */
const DECISION_PAGE = 10;

export function percent(p: number): string {
  return `${(p * 100).toFixed(1)} %`;
}

/** A model in words: its study's title, else the condition it predicts. */
export interface ModelNames {
  models: DeployedModel[];
  nameOf: (modelId: string) => string;
}

/** The deployed models, named by their studies' titles (both public catalogues). */
export function useModels(): {
  data: ModelNames | null;
  error: ApiError | null;
  reload: () => Promise<void>;
} {
  const { data, error, reload } = useLoad(
    () =>
      gql<{ deployedModels: DeployedModel[]; studies: { id: string; title: string }[] }>(
        `query { deployedModels { ${DEPLOYED_MODEL_FIELDS} } studies { id title } }`,
      ),
    [],
  );
  const names = useMemo(() => {
    if (!data) return null;
    const titles = new Map(data.studies.map((s) => [s.id, s.title]));
    const byId = new Map(data.deployedModels.map((m) => [m.id, m]));
    return {
      models: data.deployedModels,
      nameOf: (modelId: string) => {
        const m = byId.get(modelId);
        if (!m) return `model ${short(modelId)}`;
        return titles.get(m.studyId) ?? `${namedCode(m.label)} risk`;
      },
    };
  }, [data]);
  return { data: names, error, reload };
}

export function InputList({ inputs }: { inputs: DecisionInput[] }) {
  return (
    <ul className="inputs" aria-label="Inputs used">
      {inputs.map((f) => (
        <li key={f.code} data-testid="decision-input" data-code={f.code}>
          {f.display ? `${f.display} ` : ''}(LOINC {f.code}):{' '}
          <strong>{quantityText({ value: f.value, unit: f.unit })}</strong>, from{' '}
          {f.source.resourceType} <code title={f.source.recordId}>{short(f.source.recordId)}</code>{' '}
          version {f.source.version}
        </li>
      ))}
    </ul>
  );
}

interface Verification {
  status: 'VERIFIED' | 'MISMATCH' | 'PENDING';
  recomputedProbability: number | null;
  problems: string[];
}

/** Recomputes one decision on the server and checks it against the ledger (verifyDecision). */
function VerifyDecision({ id }: { id: string }) {
  const [result, setResult] = useState<Verification | null>(null);
  const { busy, error, run } = useAction();
  const verify = () =>
    run(async () => {
      setResult(null);
      const { verifyDecision } = await gql<{ verifyDecision: Verification }>(
        `query($id: ID!) { verifyDecision(id: $id) { status recomputedProbability problems } }`,
        { id },
      );
      setResult(verifyDecision);
    });
  return (
    <div className="verify">
      <button type="button" aria-disabled={busy} onClick={() => void verify()}>
        {busy ? 'Verifying…' : 'Verify'}
      </button>
      <div aria-live="polite" data-testid="verification">
        {result && (
          <p data-status={result.status}>
            <span className={`badge badge-${result.status.toLowerCase()}`}>{result.status}</span>{' '}
            {result.status === 'VERIFIED'
              ? `Recomputed from the stored inputs: ${percent(result.recomputedProbability ?? 0)}, as on the ledger.`
              : 'This decision does not match what was recorded:'}
          </p>
        )}
        {result && result.problems.length > 0 && (
          <div className="error">
            <ul data-testid="verification-problems">
              {result.problems.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          </div>
        )}
      </div>
      <ErrorNotice error={error} />
    </div>
  );
}

function DecisionCard({ d, nameOf }: { d: AiDecision; nameOf: (id: string) => string }) {
  return (
    <li className="card" data-testid="decision" data-decision={d.id}>
      <p>
        <strong data-testid="decision-probability">{percent(d.probability)}</strong> probability, by
        the model “{nameOf(d.modelId)}”
      </p>
      <dl className="facts">
        <dt>When (UTC)</dt>
        <dd>{formatTime(d.createdAt)}</dd>
        <dt>Model</dt>
        <dd>
          {nameOf(d.modelId)}, SHA-256 <code title={d.modelHash}>{d.modelHash.slice(0, 12)}</code>
        </dd>
        <dt>Requested by</dt>
        <dd data-testid="decision-actor">{d.actorId}</dd>
        <dt>Inputs</dt>
        <dd>
          <InputList inputs={d.inputs.features} />
        </dd>
        <dt>Ledger transaction</dt>
        <dd>
          <code title={d.ledgerTxId}>{short(d.ledgerTxId)}</code>
        </dd>
      </dl>
      <VerifyDecision id={d.id} />
    </li>
  );
}

interface DecisionPage {
  items: AiDecision[];
  nextCursor: string | null;
}

function decisionsPage(patientId: string, after: string | null): Promise<DecisionPage> {
  return gql<{ aiDecisions: DecisionPage }>(
    `query($p: ID!, $first: Int, $after: String) { aiDecisions(patientId: $p, first: $first, after: $after) {
       items { ${DECISION_FIELDS} } nextCursor } }`,
    { p: patientId, first: DECISION_PAGE, after },
  ).then((d) => d.aiDecisions);
}

/**
 * The decisions about a patient, newest first, a page at a time; loaded again when `refresh`
 * changes (a new assessment). `help` words the errors for the reader.
 */
export function DecisionList({
  patientId,
  refresh,
  empty,
  names,
  help,
}: {
  patientId: string;
  refresh: number;
  empty: string;
  names: ReturnType<typeof useModels>;
  help?: Partial<Record<string, string>>;
}) {
  const first = useLoad(() => decisionsPage(patientId, null), [patientId, refresh]);
  const [older, setOlder] = useState<AiDecision[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const more = useAction();
  useEffect(() => {
    setOlder([]);
    setCursor(first.data?.nextCursor ?? null);
  }, [first.data]);

  const loadOlder = () =>
    more.run(async () => {
      if (!cursor) return;
      const page = await decisionsPage(patientId, cursor);
      setOlder((o) => [...o, ...page.items]);
      setCursor(page.nextCursor);
    });

  const items = [...(first.data?.items ?? []), ...older];
  const nameOf = names.data?.nameOf ?? (() => 'a deployed model');
  return (
    <>
      <ErrorNotice error={first.error ?? names.error} help={help} />
      {first.loading && <p aria-live="polite">Loading…</p>}
      {first.data && items.length === 0 && !cursor && <p>{empty}</p>}
      {items.length > 0 && (
        <ul className="cards" aria-label="AI decisions, newest first">
          {items.map((d) => (
            <DecisionCard key={d.id} d={d} nameOf={nameOf} />
          ))}
        </ul>
      )}
      <ErrorNotice error={more.error} help={help} />
      {cursor && (
        <button type="button" aria-disabled={more.busy} onClick={() => void loadOlder()}>
          {more.busy ? 'Loading…' : 'Show older decisions'}
        </button>
      )}
    </>
  );
}

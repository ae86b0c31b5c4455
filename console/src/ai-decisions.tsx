// AI risk assessments in the console: the patient's setting and the decisions about them, each
// verifiable against the ledger; a clinician's "Assess risk" on a patient's chart. The
// researcher's deployments are in deployments.tsx.
import { FormEvent, useEffect, useMemo, useState } from 'react';
import { ApiError, gql } from './api';
import { ErrorNotice, formatTime, short, toApiError, useLoad } from './common';

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

interface AiDecision {
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

const DECISION_FIELDS = `id modelId modelHash actorId probability inputs inputCommitment ledgerTxId createdAt`;

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
export function useModels(): { data: ModelNames | null; error: ApiError | null } {
  const { data, error } = useLoad(
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
        if (!m) return 'a model no longer listed';
        return titles.get(m.studyId) ?? `SNOMED CT ${m.label} risk`;
      },
    };
  }, [data]);
  return { data: names, error };
}

/** A value as a person reads it: at most two decimals, years spelt out (UCUM "a"). */
function quantity(value: number, unit: string): string {
  const v = value.toLocaleString('en-GB', { maximumFractionDigits: 2 });
  return unit === 'a' ? `${v} years` : `${v} ${unit}`;
}

function InputList({ inputs }: { inputs: DecisionInput[] }) {
  return (
    <ul className="inputs" aria-label="Inputs used">
      {inputs.map((f) => (
        <li key={f.code} data-testid="decision-input" data-code={f.code}>
          {f.display ? `${f.display} ` : ''}(LOINC {f.code}):{' '}
          <strong>{quantity(f.value, f.unit)}</strong>, from {f.source.resourceType}{' '}
          <code title={f.source.recordId}>{short(f.source.recordId)}</code> version{' '}
          {f.source.version}
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
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  async function verify() {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      const { verifyDecision } = await gql<{ verifyDecision: Verification }>(
        `query($id: ID!) { verifyDecision(id: $id) { status recomputedProbability problems } }`,
        { id },
      );
      setResult(verifyDecision);
    } catch (e) {
      setResult(null);
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  }
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
function DecisionList({
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
  const [moreError, setMoreError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setOlder([]);
    setCursor(first.data?.nextCursor ?? null);
  }, [first.data]);

  async function more() {
    if (!cursor || busy) return;
    setBusy(true);
    setMoreError(null);
    try {
      const page = await decisionsPage(patientId, cursor);
      setOlder((o) => [...o, ...page.items]);
      setCursor(page.nextCursor);
    } catch (e) {
      setMoreError(toApiError(e));
    } finally {
      setBusy(false);
    }
  }

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
      <ErrorNotice error={moreError} help={help} />
      {cursor && (
        <button type="button" aria-disabled={busy} onClick={() => void more()}>
          {busy ? 'Loading…' : 'Show older decisions'}
        </button>
      )}
    </>
  );
}

/** The patient's page: allow or refuse AI risk assessments, and every decision about them. */
export function MyAiDecisions({ patientId }: { patientId: string }) {
  const [refresh, setRefresh] = useState(0);
  const names = useModels();
  return (
    <section aria-labelledby="ai-h">
      <h2 id="ai-h">AI decisions</h2>
      <AiDecisionSetting patientId={patientId} />
      <section aria-labelledby="ai-list-h" className="panel">
        <h3 id="ai-list-h">Decisions about you</h3>
        <p>
          Each time a clinician ran a model on your records: when, which model, the risk it
          answered, who asked and the values it used. “Verify” recomputes the decision and checks it
          against the ledger.
        </p>
        <button type="button" onClick={() => setRefresh((n) => n + 1)}>
          Refresh
        </button>
        <DecisionList
          patientId={patientId}
          refresh={refresh}
          empty="No AI decision has been made about you."
          names={names}
        />
      </section>
    </section>
  );
}

function AiDecisionSetting({ patientId }: { patientId: string }) {
  const profile = useLoad(
    () =>
      gql<{ patient: { allowAiDecisions: boolean } | null }>(
        `query($p: ID!) { patient(id: $p) { allowAiDecisions } }`,
        { p: patientId },
      ),
    [patientId],
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [status, setStatus] = useState('');
  const allowed = profile.data?.patient?.allowAiDecisions;

  async function set(allow: boolean) {
    if (busy) return;
    setBusy(true);
    setError(null);
    setStatus('');
    try {
      await gql(`mutation($allow: Boolean!) { setAiDecisions(allow: $allow) { id } }`, { allow });
      await profile.reload();
      setStatus(
        allow
          ? 'AI-assisted risk assessments are now allowed.'
          : 'AI-assisted risk assessments are now refused.',
      );
    } catch (e) {
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="ai-setting-h" className="panel">
      <h3 id="ai-setting-h">AI-assisted risk assessments</h3>
      <p id="ai-setting-why">
        A clinician you have given access to may run a deployed model on your records to estimate a
        risk. If you refuse, clinicians cannot run a model on your records at all; decisions already
        made stay listed below.
      </p>
      <ErrorNotice error={profile.error ?? error} />
      {allowed !== undefined && (
        <>
          <label className="inline">
            <input
              type="checkbox"
              role="switch"
              checked={allowed}
              aria-describedby="ai-setting-why"
              // Not disabled while saving: the keyboard's focus stays on the switch.
              aria-disabled={busy}
              onChange={() => void set(!allowed)}
            />
            Allow AI-assisted risk assessments
          </label>
          <p data-testid="ai-setting-state" data-allowed={String(allowed)}>
            AI-assisted risk assessments are <strong>{allowed ? 'allowed' : 'refused'}</strong>.
          </p>
        </>
      )}
      <p aria-live="polite" className="status">
        {status}
      </p>
    </section>
  );
}

/** What each refusal of assessRisk means to the clinician who asked. */
const ASSESS_HELP: Partial<Record<string, string>> = {
  FORBIDDEN:
    'This patient has refused AI-assisted risk assessments: no model may be run on their records, and none was.',
  CONSENT_REQUIRED: 'No consent of yours covers this assessment, so none was made.',
  BAD_USER_INPUT: 'The model cannot be run on this patient’s records: a value it needs is missing.',
  NOT_FOUND: 'That model is not deployed (any more). Choose another.',
};

/** What the decisions list's refusal means on a chart. */
const LIST_HELP: Partial<Record<string, string>> = {
  CONSENT_REQUIRED:
    'No consent of yours covers this patient’s records, so their AI decisions are not shown.',
};

/** A clinician's risk assessment of one patient with a deployed model, and the decisions so far. */
export function AssessRisk({ patientId }: { patientId: string }) {
  const models = useModels();
  const [modelId, setModelId] = useState('');
  const [result, setResult] = useState<AiDecision | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [refresh, setRefresh] = useState(0);
  const list = models.data?.models ?? [];
  const chosen = list.some((m) => m.id === modelId) ? modelId : (list[0]?.id ?? '');

  async function assess(e: FormEvent) {
    e.preventDefault();
    if (!chosen || busy) return;
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const { assessRisk } = await gql<{ assessRisk: AiDecision }>(
        `mutation($p: ID!, $m: ID!) { assessRisk(patientId: $p, modelId: $m) { ${DECISION_FIELDS} } }`,
        { p: patientId, m: chosen },
      );
      setResult(assessRisk);
      setRefresh((n) => n + 1);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="assess-h" className="panel">
      <h3 id="assess-h">Assess risk</h3>
      <p>
        Runs a deployed model on this patient’s latest records. The decision is recorded on the
        ledger before you see it, and the patient sees it too.
      </p>
      {models.data && list.length === 0 && <p>No model has been deployed for assessments yet.</p>}
      {list.length > 0 && (
        <form className="row assess" onSubmit={(e) => void assess(e)} aria-label="Assess risk">
          <label>
            Model
            <select value={chosen} onChange={(e) => setModelId(e.target.value)}>
              {list.map((m) => (
                <option key={m.id} value={m.id}>
                  {models.data!.nameOf(m.id)} · AUC {m.auc === null ? '—' : m.auc.toFixed(2)} ·{' '}
                  {m.modelHash.slice(0, 12)}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" aria-disabled={busy}>
            {busy ? 'Assessing…' : 'Assess risk'}
          </button>
        </form>
      )}
      <ErrorNotice error={error} help={ASSESS_HELP} />
      <div aria-live="polite">
        {result && (
          <div className="result" data-testid="assessment">
            <p>
              <strong data-testid="assessment-probability">{percent(result.probability)}</strong>{' '}
              probability, by the model “{models.data?.nameOf(result.modelId)}”, from the values
              below as of {formatTime(result.inputs.asOf)} UTC.
            </p>
            <InputList inputs={result.inputs.features} />
            <p className="muted">
              Input commitment on the ledger{' '}
              <code data-testid="assessment-commitment">{result.inputCommitment}</code>
            </p>
          </div>
        )}
      </div>
      <h4>AI decisions about this patient</h4>
      <DecisionList
        patientId={patientId}
        refresh={refresh}
        empty="No AI decision about this patient that you may see."
        names={models}
        help={LIST_HELP}
      />
    </section>
  );
}

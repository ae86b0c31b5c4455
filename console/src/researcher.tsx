// The researcher's pages: creating a study, studies and their runs, starting a run (the
// study's owner), its training curves refreshed while the run goes, each round's updates and
// ledger transaction, and the final model's download and deployment for AI risk assessments
// (deployments.tsx).
import { FormEvent, ReactNode, useEffect, useMemo, useState } from 'react';
import { ApiError, download, gql, Role } from './api';
import { namedCode } from './clinical-codes';
import { ErrorNotice, saveFile, short, toApiError, useAction, useLoad } from './common';
import { DeployedModels, DeployRun, useDeployedModels } from './deployments';
import { Panel, SmallMultiplesChart } from './LineChart';
import { EpsilonMeaning } from './privacy-budget';

interface RoundMetrics {
  round: number;
  auc: number | null;
  loss: number | null;
  epsilon: number | null;
  numContributors: number;
  numUpdates: number;
}

/** One update a node sent for a round, as the coordinator judged it. */
interface RoundUpdate {
  round: number;
  nodeId: string;
  status: 'ACCEPTED' | 'REJECTED';
  /** Why it was rejected; reasons count patients, never name them. */
  reason: string | null;
  numExamples: number;
}

interface Run {
  id: string;
  status: string;
  currentRound: number;
  rounds: number;
  failure: string | null;
  modelHash: string | null;
  provenanceTxIds: string[];
  metrics: RoundMetrics[];
}

interface Study {
  id: string;
  title: string;
  ownerId: string;
  features: string[];
  label: string;
  strategy: string;
  runs: Run[];
}

const RUN_FIELDS = `id status currentRound rounds failure modelHash provenanceTxIds metrics { round auc loss epsilon numContributors numUpdates }`;

/** Who is looking: the token's subject (what a study's ownerId holds) and the console role. */
export interface Viewer {
  subject: string;
  role: Role;
}

/**
 * What the server lets `viewer` do with a study of `ownerId`: start its runs (its owner, a
 * researcher: Coordinator.start) and deploy their models (its owner, or an administrator:
 * Deployments.deploy). Others are told so instead of meeting a FORBIDDEN after the click.
 */
function mayOnStudy(viewer: Viewer, ownerId: string) {
  const owner = viewer.role === 'RESEARCHER' && viewer.subject === ownerId;
  return { start: owner, deploy: owner || viewer.role === 'ADMIN' };
}

export function Studies({ viewer }: { viewer: Viewer }) {
  const studies = useLoad(
    () =>
      gql<{ studies: Study[] }>(
        `query { studies { id title ownerId features label strategy runs { ${RUN_FIELDS} } } }`,
      ),
    [],
  );
  const [runId, setRunId] = useState<string | null>(null);
  const deployments = useDeployedModels();
  const titles = useMemo(
    () => new Map((studies.data?.studies ?? []).map((s) => [s.id, s.title])),
    [studies.data],
  );
  const runStudy = (studies.data?.studies ?? []).find((s) => s.runs.some((r) => r.id === runId));
  return (
    <section aria-labelledby="studies-h">
      <h2 id="studies-h">Studies and runs</h2>
      {viewer.role === 'RESEARCHER' ? (
        <CreateStudy onCreated={studies.reload} />
      ) : (
        <p className="muted">Researchers create studies; an administrator may deploy their runs.</p>
      )}
      <ErrorNotice error={studies.error} />
      {studies.data && studies.data.studies.length === 0 && <p>No studies yet.</p>}
      <ul className="cards">
        {(studies.data?.studies ?? []).map((s) => (
          <li key={s.id} className="card">
            <h3>{s.title}</h3>
            <p className="muted">
              Predicts {namedCode(s.label)} from {s.features.map(namedCode).join(', ')} ·{' '}
              {s.strategy}
            </p>
            {mayOnStudy(viewer, s.ownerId).start ? (
              <StartRun
                studyId={s.id}
                onStarted={async (id) => {
                  await studies.reload();
                  setRunId(id);
                }}
              />
            ) : (
              <p data-testid="not-owner">
                Only the study’s owner, <code>{s.ownerId}</code>, can start its runs.
              </p>
            )}
            {s.runs.length > 0 && (
              <ul aria-label={`Runs of ${s.title}`}>
                {s.runs.map((r) => (
                  <li key={r.id}>
                    <button type="button" className="link" onClick={() => setRunId(r.id)}>
                      Run {short(r.id)}: {r.status.toLowerCase()}, round {r.currentRound} of{' '}
                      {r.rounds}
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ul>
      {runId && (
        <RunCurves key={runId} runId={runId} onSettled={studies.reload}>
          <DeployRun
            runId={runId}
            deployed={deployments.data?.deployedModels.find((m) => m.runId === runId)}
            mayDeploy={runStudy !== undefined && mayOnStudy(viewer, runStudy.ownerId).deploy}
            onDeployed={deployments.reload}
          />
        </RunCurves>
      )}
      <DeployedModels loaded={deployments} titles={titles} />
    </section>
  );
}

/** The LOINC codes every training node can scale (FEATURE_SCALES), as a hint. */
const KNOWN_FEATURES =
  '2345-7 glucose, 4548-4 HbA1c, 39156-5 BMI, 8480-6 systolic pressure, 2085-9 HDL, 30525-0 age';
const LOINC_CODE = /^\d{1,7}-\d$/;
const SNOMED_ID = /^\d{6,18}$/;

interface StudyForm {
  title: string;
  features: string;
  label: string;
  model: string;
  strategy: string;
  minNodes: string;
  localEpochs: string;
  learningRate: string;
  clipNorm: string;
  noiseMultiplier: string;
}

const EMPTY_STUDY: StudyForm = {
  title: '',
  features: '',
  label: '',
  model: 'LOGISTIC',
  strategy: 'FEDAVG',
  minNodes: '2',
  localEpochs: '1',
  learningRate: '0.1',
  clipNorm: '',
  noiseMultiplier: '',
};

type FieldErrors = Partial<Record<keyof StudyForm, string>>;

/**
 * The form checked before it is sent, in plain words per field; what only the server knows
 * (a feature without a reference scale, privacy settings that do not fit) it answers itself.
 */
function checkStudy(f: StudyForm): { errors: FieldErrors; input: Record<string, unknown> } {
  const errors: FieldErrors = {};
  const title = f.title.trim();
  if (!title) errors.title = 'Give the study a title.';
  else if (title.length > 200) errors.title = 'The title must be at most 200 characters.';
  const features = f.features.split(/[\s,]+/).filter(Boolean);
  const notLoinc = features.filter((c) => !LOINC_CODE.test(c));
  if (features.length === 0) errors.features = 'List at least one LOINC code, such as 2345-7.';
  else if (notLoinc.length > 0) {
    errors.features = `${notLoinc.map((c) => `“${c}”`).join(', ')} ${notLoinc.length === 1 ? 'is not a LOINC code' : 'are not LOINC codes'}: a LOINC code is digits, a dash and a check digit, such as 2345-7.`;
  } else if (new Set(features).size !== features.length) {
    errors.features = 'A feature is listed twice: list each code once.';
  }
  const label = f.label.trim();
  if (!SNOMED_ID.test(label)) {
    errors.label = 'The label must be a SNOMED CT concept id: 6 to 18 digits, such as 44054006.';
  }
  const whole = (field: 'minNodes' | 'localEpochs', words: string, min: number, max: number) => {
    const v = Number(f[field]);
    if (f[field].trim() === '' || !Number.isInteger(v) || v < min || v > max) {
      errors[field] = `${words} must be a whole number from ${min} to ${max}.`;
    }
    return v;
  };
  const minNodes = whole('minNodes', 'The minimum number of hospitals', 1, 100);
  const localEpochs = whole('localEpochs', 'The local epochs', 1, 100);
  const learningRate = Number(f.learningRate);
  if (f.learningRate.trim() === '' || !(learningRate > 0 && learningRate <= 10)) {
    errors.learningRate = 'The learning rate must be a number above 0 and at most 10.';
  }
  const optionalNumber = (
    field: 'clipNorm' | 'noiseMultiplier',
    words: string,
    ok: (v: number) => boolean,
  ) => {
    if (f[field].trim() === '') return undefined;
    const v = Number(f[field]);
    if (!Number.isFinite(v) || !ok(v)) errors[field] = words;
    return v;
  };
  const clipNorm = optionalNumber(
    'clipNorm',
    'The clip norm must be a positive number.',
    (v) => v > 0,
  );
  const noiseMultiplier = optionalNumber(
    'noiseMultiplier',
    'The noise multiplier must be a number of at least 0.',
    (v) => v >= 0,
  );
  return {
    errors,
    input: {
      title,
      features,
      label,
      model: f.model,
      strategy: f.strategy,
      minNodes,
      localEpochs,
      learningRate,
      ...(clipNorm !== undefined ? { clipNorm } : {}),
      ...(noiseMultiplier !== undefined ? { noiseMultiplier } : {}),
    },
  };
}

function CreateStudy({ onCreated }: { onCreated: () => Promise<void> }) {
  const [form, setForm] = useState<StudyForm>(EMPTY_STUDY);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<ApiError | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (field: keyof StudyForm) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [field]: e.target.value }));

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setCreated(null);
    const checked = checkStudy(form);
    setErrors(checked.errors);
    if (Object.keys(checked.errors).length > 0) return;
    setBusy(true);
    try {
      const { createStudy } = await gql<{ createStudy: { id: string; title: string } }>(
        `mutation($input: CreateStudyInput!) { createStudy(input: $input) { id title } }`,
        { input: checked.input },
      );
      setForm(EMPTY_STUDY);
      setCreated(createStudy.title);
      await onCreated();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }

  /** A labelled input with its error (if any) tied to it for screen readers. */
  const field = (
    name: keyof StudyForm,
    label: string,
    props: { type?: string; step?: string; hint?: string } = {},
  ) => (
    <label>
      {label}
      {props.hint && (
        <span className="muted" id={`study-${name}-hint`}>
          {' '}
          ({props.hint})
        </span>
      )}
      <input
        value={form[name]}
        onChange={set(name)}
        type={props.type ?? 'text'}
        step={props.step}
        autoComplete="off"
        aria-invalid={errors[name] ? true : undefined}
        aria-describedby={
          [props.hint && `study-${name}-hint`, errors[name] && `study-${name}-error`]
            .filter(Boolean)
            .join(' ') || undefined
        }
      />
      {errors[name] && (
        <span className="error" id={`study-${name}-error`} data-field={name}>
          {errors[name]}
        </span>
      )}
    </label>
  );

  const invalid = Object.keys(errors).length;
  return (
    <form
      className="panel"
      onSubmit={(e) => void submit(e)}
      aria-labelledby="new-study-h"
      noValidate
    >
      <h3 id="new-study-h">Create a study</h3>
      {field('title', 'Title')}
      {field('features', 'Features (LOINC codes)', {
        hint: `separated by commas or spaces; the nodes can scale ${KNOWN_FEATURES}`,
      })}
      {field('label', 'Label (SNOMED CT condition)', { hint: 'e.g. 44054006, type 2 diabetes' })}
      <div className="row">
        <label>
          Model
          <select value={form.model} onChange={set('model')}>
            <option value="LOGISTIC">Logistic regression</option>
            <option value="MLP">Small neural network (MLP)</option>
          </select>
        </label>
        <label>
          Aggregation
          <select value={form.strategy} onChange={set('strategy')}>
            <option value="FEDAVG">FedAvg</option>
            <option value="FEDPROX">FedProx</option>
            <option value="FEDADAM">FedAdam</option>
            <option value="TRIMMED_MEAN">Trimmed mean</option>
          </select>
        </label>
      </div>
      <div className="row">
        {field('minNodes', 'Minimum hospitals per round', { type: 'number' })}
        {field('localEpochs', 'Local epochs', { type: 'number' })}
        {field('learningRate', 'Learning rate', { type: 'number', step: 'any' })}
      </div>
      <details>
        <summary>Differential privacy (optional)</summary>
        <div className="row">
          {field('clipNorm', 'Clip norm', { type: 'number', step: 'any' })}
          {field('noiseMultiplier', 'Noise multiplier', { type: 'number', step: 'any' })}
        </div>
        <EpsilonMeaning id="study-epsilon-meaning" />
      </details>
      {invalid > 0 && (
        <p role="alert" className="error" data-testid="study-form-errors">
          {invalid === 1 ? 'One field needs' : `${invalid} fields need`} correcting before the study
          can be created.
        </p>
      )}
      <ErrorNotice error={error} />
      {created && (
        <p role="status" className="ok">
          Study “{created}” created.
        </p>
      )}
      <button type="submit" disabled={busy}>
        {busy ? 'Creating…' : 'Create the study'}
      </button>
    </form>
  );
}

function StartRun({
  studyId,
  onStarted,
}: {
  studyId: string;
  onStarted: (runId: string) => Promise<void>;
}) {
  const [rounds, setRounds] = useState('3');
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { startTraining } = await gql<{ startTraining: { id: string } }>(
        `mutation($s: ID!, $n: Int!) { startTraining(studyId: $s, rounds: $n) { id } }`,
        { s: studyId, n: Number(rounds) },
      );
      await onStarted(startTraining.id);
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="row" onSubmit={(e) => void submit(e)}>
      <label>
        Rounds
        <input
          type="number"
          min={1}
          max={100}
          value={rounds}
          onChange={(e) => setRounds(e.target.value)}
        />
      </label>
      <button type="submit" disabled={busy}>
        {busy ? 'Starting…' : 'Start a run'}
      </button>
      <ErrorNotice error={error} />
    </form>
  );
}

const POLL_MS = 2000;

/** `children`: what a COMPLETED run offers besides its model's download (its deployment). */
function RunCurves({
  runId,
  onSettled,
  children,
}: {
  runId: string;
  onSettled: () => Promise<void>;
  children: ReactNode;
}) {
  const run = useLoad(
    () =>
      gql<{ trainingRun: (Run & { updates: RoundUpdate[] }) | null }>(
        `query($id: ID!) { trainingRun(id: $id) { ${RUN_FIELDS} updates { round nodeId status reason numExamples } } }`,
        { id: runId },
      ),
    [runId],
  );
  const r = run.data?.trainingRun;
  const live = r?.status === 'RUNNING' || r?.status === 'PENDING';
  const { reload } = run;
  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => void reload(), POLL_MS);
    return () => clearInterval(t);
  }, [live, reload]);
  // Once the run has finished, the studies' list of runs says so too.
  const settled = r !== undefined && r !== null && !live;
  useEffect(() => {
    if (settled) void onSettled();
  }, [settled, onSettled]);
  const metrics = useMemo(() => r?.metrics ?? [], [r]);
  const labels = useMemo(() => metrics.map((m) => String(m.round)), [metrics]);
  // Each measure on its own axis: an AUC (0–1) beside an ε that reaches 20 would lie flat.
  const panels = useMemo((): Panel[] => {
    const series = (label: string, values: (number | null)[], color: string) => ({
      label,
      values,
      color,
    });
    return [
      {
        series: series(
          'AUC',
          metrics.map((m) => m.auc),
          '#15803d',
        ),
        title: 'AUC (held out, 0 to 1; 0.5 is chance)',
        y: { title: 'AUC', min: 0, max: 1 },
        none: 'No AUC was measured (no node had both classes held out).',
      },
      {
        series: series(
          'Loss',
          metrics.map((m) => m.loss),
          '#b91c1c',
        ),
        title: 'Loss (held out, lower is better)',
        y: { title: 'Loss', min: 0 },
        none: 'No loss was reported.',
      },
      {
        series: series(
          'ε spent (δ = 1e-5, per hospital)',
          metrics.map((m) => m.epsilon),
          '#7c3aed',
        ),
        title: 'Privacy spent so far, ε (per hospital)',
        y: { title: 'ε', min: 0 },
        none: 'No privacy budget is spent: this study trains without differential privacy.',
        describedBy: 'run-epsilon-meaning',
      },
    ];
  }, [metrics]);
  const contributors = useMemo(
    () => [
      { label: 'Patients contributing', values: metrics.map((m) => m.numContributors) },
      { label: 'Updates aggregated', values: metrics.map((m) => m.numUpdates) },
    ],
    [metrics],
  );
  return (
    <section aria-labelledby="run-h" className="panel">
      <h3 id="run-h">Run {short(runId)}</h3>
      <ErrorNotice error={run.error} />
      {r && (
        <>
          <p aria-live="polite" data-testid="run-status">
            {r.status.toLowerCase()}: round {r.currentRound} of {r.rounds}
            {live ? ' (updating)' : ''}
            {r.failure ? ` — ${r.failure}` : ''}
          </p>
          {metrics.length > 0 ? (
            <>
              <SmallMultiplesChart
                testId="run-chart"
                title="AUC, loss and privacy spent per round, each on its own scale"
                labels={labels}
                panels={panels}
                tableOnly={contributors}
                xTitle="Round"
              />
              <EpsilonMeaning id="run-epsilon-meaning" />
            </>
          ) : (
            <p>No round has closed yet.</p>
          )}
          <RoundUpdates run={r} />
          {r.provenanceTxIds.length > 0 && (
            <div className="table-wrap">
              <table data-testid="round-txs">
                <caption>Each round&apos;s provenance, recorded on the ledger</caption>
                <thead>
                  <tr>
                    <th scope="col">Round</th>
                    <th scope="col">Ledger transaction</th>
                  </tr>
                </thead>
                <tbody>
                  {r.provenanceTxIds.map((tx, i) => (
                    <tr key={tx}>
                      <td>{i + 1}</td>
                      <td>
                        <code>{tx}</code>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {r.modelHash && (
            <p className="muted">
              Latest model SHA-256 <code>{short(r.modelHash)}</code>
            </p>
          )}
          {r.status === 'COMPLETED' && (
            <>
              <DownloadModel runId={runId} />
              {children}
            </>
          )}
        </>
      )}
    </section>
  );
}

/**
 * The updates nodes sent for one round (the latest unless another is chosen): each one's node,
 * whether it was accepted and, if not, why; and how many patients the round was trained on.
 */
function RoundUpdates({ run }: { run: Run & { updates: RoundUpdate[] } }) {
  const [chosen, setChosen] = useState<number | null>(null);
  const rounds = Array.from({ length: run.currentRound }, (_, i) => i + 1);
  if (rounds.length === 0) return null;
  const round = chosen !== null && chosen <= run.currentRound ? chosen : run.currentRound;
  const updates = run.updates.filter((u) => u.round === round);
  const closed = run.metrics.find((m) => m.round === round);
  const accepted = updates.filter((u) => u.status === 'ACCEPTED').length;
  // A round without metrics is still open, or ended without a model (a failed or cancelled run).
  const open = round === run.currentRound && (run.status === 'RUNNING' || run.status === 'PENDING');
  const patients = (n: number) => (n === 1 ? '1 patient' : `${n} patients`);
  return (
    <section aria-labelledby="round-updates-h">
      <h4 id="round-updates-h">Updates by round</h4>
      <label htmlFor="round-updates-round">Round</label>
      <select
        id="round-updates-round"
        value={round}
        onChange={(e) => setChosen(Number(e.target.value))}
      >
        {rounds.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <p data-testid="round-contributors">
        {closed
          ? `Round ${round} was trained on the records of ${patients(closed.numContributors)} (counted, never named), from ${accepted} accepted of ${updates.length} updates received.`
          : open
            ? `Round ${round} has not closed: ${accepted} accepted of ${updates.length} updates received so far.`
            : `Round ${round} made no model: ${accepted} accepted of ${updates.length} updates received.`}
      </p>
      {updates.length > 0 && (
        <div className="table-wrap">
          <table data-testid="round-updates">
            <caption>The updates of round {round}</caption>
            <thead>
              <tr>
                <th scope="col">Node</th>
                <th scope="col">Outcome</th>
                <th scope="col">Examples</th>
              </tr>
            </thead>
            <tbody>
              {updates.map((u, i) => (
                <tr key={`${u.nodeId}-${i}`}>
                  <td>
                    <code>{u.nodeId}</code>
                  </td>
                  <td>
                    <span
                      className={`badge ${u.status === 'ACCEPTED' ? 'badge-active' : 'badge-revoked'}`}
                    >
                      {u.status === 'ACCEPTED' ? 'Accepted' : 'Rejected'}
                    </span>
                    {u.reason && <span className="detail">: {u.reason}</span>}
                  </td>
                  <td>{u.numExamples}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/**
 * The final model of a completed run as TensorFlow.js model.json: fetched with the token in
 * the Authorization header (never in a URL), then saved from a Blob through a download link.
 */
function DownloadModel({ runId }: { runId: string }) {
  const { busy, error, run } = useAction();
  const save = () =>
    run(async () => {
      const blob = await download(`/fl/runs/${encodeURIComponent(runId)}/model`);
      saveFile(blob, `model-${runId}.json`);
    });
  return (
    <div className="row">
      <button type="button" onClick={() => void save()} disabled={busy}>
        {busy ? 'Preparing…' : 'Download the final model (TensorFlow.js model.json)'}
      </button>
      <ErrorNotice error={error} />
    </div>
  );
}

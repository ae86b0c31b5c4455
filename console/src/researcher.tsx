// The researcher's pages: studies and their runs, starting a run, and its training curves,
// refreshed while the run goes.
import { FormEvent, useEffect, useMemo, useState } from 'react';
import { ApiError, gql } from './api';
import { ErrorNotice, short, toApiError, useLoad } from './common';
import { LineChart } from './LineChart';

interface RoundMetrics {
  round: number;
  auc: number | null;
  loss: number | null;
  epsilon: number | null;
  numContributors: number;
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
  features: string[];
  label: string;
  strategy: string;
  runs: Run[];
}

const RUN_FIELDS = `id status currentRound rounds failure modelHash provenanceTxIds metrics { round auc loss epsilon numContributors }`;

export function Studies() {
  const studies = useLoad(
    () =>
      gql<{ studies: Study[] }>(
        `query { studies { id title features label strategy runs { ${RUN_FIELDS} } } }`,
      ),
    [],
  );
  const [runId, setRunId] = useState<string | null>(null);
  return (
    <section aria-labelledby="studies-h">
      <h2 id="studies-h">Studies and runs</h2>
      <ErrorNotice error={studies.error} />
      {studies.data && studies.data.studies.length === 0 && <p>No studies yet.</p>}
      <ul className="cards">
        {(studies.data?.studies ?? []).map((s) => (
          <li key={s.id} className="card">
            <h3>{s.title}</h3>
            <p className="muted">
              Predicts SNOMED {s.label} from LOINC {s.features.join(', ')} · {s.strategy}
            </p>
            <StartRun
              studyId={s.id}
              onStarted={async (id) => {
                await studies.reload();
                setRunId(id);
              }}
            />
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
      {runId && <RunCurves key={runId} runId={runId} onSettled={studies.reload} />}
    </section>
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

function RunCurves({ runId, onSettled }: { runId: string; onSettled: () => Promise<void> }) {
  const run = useLoad(
    () =>
      gql<{ trainingRun: Run | null }>(
        `query($id: ID!) { trainingRun(id: $id) { ${RUN_FIELDS} } }`,
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
  const series = useMemo(
    () => [
      { label: 'AUC', values: metrics.map((m) => m.auc), color: '#15803d' },
      { label: 'Loss', values: metrics.map((m) => m.loss), color: '#b91c1c' },
      { label: 'ε spent (per node)', values: metrics.map((m) => m.epsilon), color: '#7c3aed' },
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
            <LineChart
              testId="run-chart"
              title="AUC, loss and privacy spent per round"
              labels={labels}
              series={series}
              xTitle="Round"
              yTitle="Value"
            />
          ) : (
            <p>No round has closed yet.</p>
          )}
          {r.provenanceTxIds.length > 0 && (
            <details>
              <summary>Each round&apos;s ledger transaction</summary>
              <ol>
                {r.provenanceTxIds.map((tx) => (
                  <li key={tx}>
                    <code>{tx}</code>
                  </li>
                ))}
              </ol>
            </details>
          )}
          {r.modelHash && (
            <p className="muted">
              Latest model SHA-256 <code>{short(r.modelHash)}</code>
            </p>
          )}
        </>
      )}
    </section>
  );
}

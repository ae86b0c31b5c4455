// A clinician's "Assess risk" on a patient's chart: a deployed model run on the patient's latest
// records (assessRisk), its refusals in plain words, and the decisions about the patient so far.
import { FormEvent, useState } from 'react';
import {
  AiDecision,
  DECISION_FIELDS,
  DecisionList,
  InputList,
  percent,
  useModels,
} from './ai-decisions';
import { gql } from './api';
import { ErrorNotice, formatTime, useAction } from './common';

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

/**
 * A clinician's risk assessment of one patient with a deployed model, and the decisions so far.
 * `chartReloads` counts the chart's reloads: the decisions are read again with it, since what
 * the clinician may see changes with their access (an emergency declared, a grant revoked).
 */
export function AssessRisk({
  patientId,
  chartReloads,
}: {
  patientId: string;
  chartReloads: number;
}) {
  const models = useModels();
  const [modelId, setModelId] = useState('');
  const [result, setResult] = useState<AiDecision | null>(null);
  const { busy, error, run } = useAction();
  const [assessments, setAssessments] = useState(0);
  const list = models.data?.models ?? [];
  const chosen = list.some((m) => m.id === modelId) ? modelId : (list[0]?.id ?? '');

  async function assess(e: FormEvent) {
    e.preventDefault();
    if (!chosen) return;
    await run(async () => {
      setResult(null);
      const { assessRisk } = await gql<{ assessRisk: AiDecision }>(
        `mutation($p: ID!, $m: ID!) { assessRisk(patientId: $p, modelId: $m) { ${DECISION_FIELDS} } }`,
        { p: patientId, m: chosen },
      );
      setResult(assessRisk);
      setAssessments((n) => n + 1);
    });
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
        // Either count going up is a change of the sum.
        refresh={assessments + chartReloads}
        empty="No AI decision about this patient that you may see."
        names={models}
        help={LIST_HELP}
      />
    </section>
  );
}

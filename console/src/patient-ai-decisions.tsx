// The patient's AI decisions page: allow or refuse AI-assisted risk assessments, and every
// decision about them (ai-decisions.tsx).
import { useState } from 'react';
import { DecisionList, useModels } from './ai-decisions';
import { ErrorNotice } from './common';
import { signatureHelp } from './signing';
import { usePatientFlag } from './patient-settings';

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
        <button
          type="button"
          onClick={() => {
            setRefresh((n) => n + 1);
            void names.reload();
          }}
        >
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
  const { allowed, error, busy, status, set } = usePatientFlag(
    patientId,
    { field: 'allowAiDecisions', mutation: 'setAiDecisions' },
    (allow) =>
      allow
        ? 'AI-assisted risk assessments are now allowed.'
        : 'AI-assisted risk assessments are now refused.',
  );

  return (
    <section aria-labelledby="ai-setting-h" className="panel">
      <h3 id="ai-setting-h">AI-assisted risk assessments</h3>
      <p id="ai-setting-why">
        A clinician you have given access to may run a deployed model on your records to estimate a
        risk. If you refuse, clinicians cannot run a model on your records at all; decisions already
        made stay listed below.
      </p>
      <ErrorNotice error={error} help={signatureHelp(error)} />
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

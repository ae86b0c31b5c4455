// The researcher's side of AI decisions: deploying a completed run's final model for clinicians'
// risk assessments (on the ledger), and the models deployed so far.
import { gql } from './api';
import { DEPLOYED_MODEL_FIELDS, DeployedModel } from './ai-decisions';
import { namedCode } from './clinical-codes';
import { ErrorNotice, formatTime, Loaded, short, useAction, useLoad } from './common';
import { EpsilonMeaning } from './privacy-budget';

export function useDeployedModels(): Loaded<{ deployedModels: DeployedModel[] }> {
  return useLoad(
    () =>
      gql<{ deployedModels: DeployedModel[] }>(
        `query { deployedModels { ${DEPLOYED_MODEL_FIELDS} } }`,
      ),
    [],
  );
}

/** ε as the study page words it: per hospital, never per patient. */
function epsilonWords(epsilon: number | null): string {
  return epsilon === null
    ? 'none spent (trained without differential privacy)'
    : `${epsilon.toFixed(2)} (δ = 1e-5, per hospital, not per patient)`;
}

/**
 * A COMPLETED run's "Deploy", or where its model already is. `mayDeploy`: whether the viewer
 * may deploy it (the study's owner, or an administrator, as the server decides); anyone else
 * is told who may, rather than offered a button the server would refuse.
 */
export function DeployRun({
  runId,
  deployed,
  mayDeploy,
  onDeployed,
}: {
  runId: string;
  deployed: DeployedModel | undefined;
  mayDeploy: boolean;
  onDeployed: () => Promise<void>;
}) {
  const { busy, error, run } = useAction();
  const deploy = () =>
    run(async () => {
      await gql(`mutation($r: ID!) { deployModel(runId: $r) { id } }`, { r: runId });
      await onDeployed();
    });
  return (
    <div aria-live="polite" data-testid="deploy-run">
      {deployed ? (
        <p className="ok">
          Deployed on {formatTime(deployed.deployedAt)} UTC: clinicians may assess risk with it.
          Ledger transaction <code>{short(deployed.ledgerTxId)}</code>.
        </p>
      ) : !mayDeploy ? (
        <p data-testid="deploy-not-yours">
          Not deployed. Only the study’s owner, or an administrator, can deploy this run’s model.
        </p>
      ) : (
        <div className="row">
          <p id={`deploy-${runId}-why`}>
            Deploying releases this run’s final model to clinicians for AI risk assessments; the
            deployment is recorded on the ledger.
          </p>
          <button
            type="button"
            aria-disabled={busy}
            aria-describedby={`deploy-${runId}-why`}
            onClick={() => void deploy()}
          >
            {busy ? 'Deploying…' : 'Deploy'}
          </button>
        </div>
      )}
      <ErrorNotice error={error} />
    </div>
  );
}

/** Every deployed model: its hash, AUC, privacy spent and the ledger transaction. */
export function DeployedModels({
  loaded,
  titles,
}: {
  loaded: Loaded<{ deployedModels: DeployedModel[] }>;
  titles: Map<string, string>;
}) {
  const models = loaded.data?.deployedModels ?? [];
  return (
    <section aria-labelledby="deployed-h" className="panel">
      <h3 id="deployed-h">Deployed models</h3>
      <ErrorNotice error={loaded.error} />
      {loaded.data && models.length === 0 && <p>No model has been deployed yet.</p>}
      {models.length > 0 && (
        <ul className="cards" aria-labelledby="deployed-h">
          {models.map((m) => (
            <li key={m.id} className="card" data-testid="deployed-model" data-run={m.runId}>
              <p>
                <strong>{titles.get(m.studyId) ?? `Study ${short(m.studyId)}`}</strong>, run{' '}
                {short(m.runId)}: predicts {namedCode(m.label)} from{' '}
                {m.features.map(namedCode).join(', ')}
              </p>
              <dl className="facts">
                <dt>Model SHA-256</dt>
                <dd>
                  <code data-testid="deployed-hash">{m.modelHash}</code>
                </dd>
                <dt>AUC</dt>
                <dd data-testid="deployed-auc">
                  {m.auc === null ? 'not measured' : m.auc.toFixed(3)}
                </dd>
                <dt>ε spent</dt>
                <dd data-testid="deployed-epsilon" aria-describedby="deployed-epsilon-meaning">
                  {epsilonWords(m.epsilon)}
                </dd>
                <dt>Deployed</dt>
                <dd>{formatTime(m.deployedAt)} UTC</dd>
                <dt>Ledger transaction</dt>
                <dd>
                  <code data-testid="deployed-tx">{m.ledgerTxId}</code>
                </dd>
              </dl>
            </li>
          ))}
        </ul>
      )}
      {models.length > 0 && <EpsilonMeaning id="deployed-epsilon-meaning" />}
    </section>
  );
}

// `custodia node`: this organisation's training node for a coordinator run by another
// Custodia instance. It asks the coordinator which rounds are open, trains on this instance's
// own patients (those with an active TRAIN grant for the study, read from this instance's
// database), and posts each update over HTTP. Only model weights leave the organisation.
import { INestApplicationContext, Logger } from '@nestjs/common';
import { decodeJwt, importJWK, JWK } from 'jose';
import { PolicyDecisionPoint } from '../../consent';
import { AppConfig, APP_CONFIG } from '../../config';
import { RecordsService } from '../../records';
import { floats, prepareUpdate, SigningKey, StudySettings, TrainingExamples } from './node-work';

export interface RemoteNodeOptions {
  /** The coordinator's base URL, e.g. https://research.example. */
  coordinator: string;
  /** A NODE token whose subject is this node's registered id. */
  token: string;
  /** This node's private key (JWK, EC P-256). */
  privateJwk: JWK;
}

export interface PollResult {
  submitted: { runId: string; round: number; status: string; reason: string | null }[];
}

const STUDY_FIELDS = 'id model features label strategy localEpochs batchSize learningRate';

export class RemoteNode {
  private readonly logger = new Logger(RemoteNode.name);
  readonly nodeId: string;
  private key?: SigningKey;
  /** Its examples per study, kept between polls (rebuilt only where records changed). */
  private examples?: TrainingExamples;

  constructor(
    private readonly app: INestApplicationContext,
    private readonly options: RemoteNodeOptions,
  ) {
    const sub = decodeJwt(options.token).sub;
    if (!sub) throw new Error('the node token has no subject (the node id)');
    this.nodeId = sub;
  }

  /** Trains and submits for every open round this node has not answered yet. */
  async pollOnce(): Promise<PollResult> {
    this.key ??= (await importJWK(this.options.privateJwk, 'ES256')) as SigningKey;
    const { openRounds } = await this.graphql<{
      openRounds: {
        runId: string;
        round: number;
        studyId: string;
        submitted: boolean;
        clientConfig: Record<string, number>;
      }[];
    }>('{ openRounds { runId round studyId submitted clientConfig } }');
    const result: PollResult = { submitted: [] };
    for (const open of openRounds.filter((r) => !r.submitted)) {
      const { study } = await this.graphql<{ study: StudySettings | null }>(
        `query($id: ID!) { study(id: $id) { ${STUDY_FIELDS} } }`,
        { id: open.studyId },
      );
      // Withheld by the coordinator (its row is not what the ledger registered): nothing to
      // train for.
      if (!study) continue;
      const config = this.app.get<AppConfig>(APP_CONFIG);
      this.examples ??= new TrainingExamples(
        this.app.get(PolicyDecisionPoint),
        this.app.get(RecordsService),
      );
      // The model is fetched and trained on while the patients' uses are being logged; the
      // update leaves this organisation only once its access log holds them.
      const { examples, logged } = await this.examples.select(config.orgId, study, this.nodeId, {
        runId: open.runId,
        round: open.round,
      });
      if (examples.length === 0) {
        await logged;
        continue;
      }
      const global = floats(
        await this.fetchBytes(`/fl/runs/${open.runId}/rounds/${open.round}/model`),
      );
      const update = await prepareUpdate({
        study,
        runId: open.runId,
        round: open.round,
        nodeId: this.nodeId,
        key: this.key,
        examples,
        logged,
        global,
        clientConfig: open.clientConfig,
      });
      if (!update) continue;
      const res = await fetch(
        `${this.options.coordinator}/fl/runs/${open.runId}/rounds/${open.round}/updates`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${this.options.token}`,
            'content-type': 'application/octet-stream',
            'x-custodia-manifest': update.manifest,
          },
          body: update.body,
        },
      );
      const answer = (await res.json().catch(() => ({}))) as {
        status?: string;
        reason?: string | null;
        errors?: { message?: string }[];
      };
      if (!answer.status) {
        const why = answer.errors?.[0]?.message;
        throw new Error(`the coordinator answered ${res.status}${why ? `: ${why}` : ''}`);
      }
      result.submitted.push({
        runId: open.runId,
        round: open.round,
        status: answer.status,
        reason: answer.reason ?? null,
      });
    }
    return result;
  }

  /** Polls until `signal` aborts, waiting `intervalMs` between polls. */
  async run(signal: AbortSignal, intervalMs = 2_000): Promise<void> {
    while (!signal.aborted) {
      try {
        for (const s of (await this.pollOnce()).submitted) {
          this.logger.log({ ...s }, 'update submitted');
        }
      } catch (e) {
        this.logger.warn({ errorType: (e as Error).name }, 'poll failed; will retry');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private async graphql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await fetch(`${this.options.coordinator}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.options.token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
    if (body.errors?.length || !body.data) {
      throw new Error(`the coordinator refused: ${body.errors?.[0]?.message ?? res.status}`);
    }
    return body.data;
  }

  private async fetchBytes(path: string): Promise<ArrayBuffer> {
    const res = await fetch(`${this.options.coordinator}${path}`, {
      headers: { authorization: `Bearer ${this.options.token}` },
    });
    if (!res.ok) throw new Error(`the coordinator answered ${res.status} for ${path}`);
    return res.arrayBuffer();
  }
}

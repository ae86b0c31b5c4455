// The Ledger port on a real Hyperledger Fabric channel, through the organisation's peer's
// Gateway service (@hyperledger/fabric-gateway). Every call has a deadline, so a peer or
// orderer that is down yields LEDGER_UNAVAILABLE rather than a hang; a transaction that lost a
// read conflict (proved not committed by its validation code) is proposed once more.
import * as grpc from '@grpc/grpc-js';
import {
  ChaincodeEvent,
  CloseableAsyncIterable,
  connect,
  Contract,
  Gateway,
  Network,
} from '@hyperledger/fabric-gateway';
import { common } from '@hyperledger/fabric-protos';
import { Logger } from '@nestjs/common';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConflictError, LedgerUnavailableError } from '../../common/errors';
import {
  Checkpoint,
  ContractName,
  EventSubscription,
  Ledger,
  LedgerEvent,
  SubmitResult,
} from '../ledger.port';
import { EventCursor } from './event-cursor';
import { FabricLedgerConfig } from './fabric-config';
import { gatewaySigning } from './openssl-signer';
import {
  fabricError,
  FabricPhase,
  isEndorsementMismatch,
  isReadConflict,
  validationCodeName,
} from './fabric-errors';

/** Deadlines of each gateway call, in milliseconds. */
export interface FabricDeadlines {
  evaluate: number;
  /** Endorsement runs the chaincode on a peer of each organisation the policy requires. */
  endorse: number;
  /** Handing the endorsed transaction to the ordering service. */
  submit: number;
  /** Waiting for the block with the transaction: batch timeout plus validation and commit. */
  commitStatus: number;
}

export const DEFAULT_DEADLINES: FabricDeadlines = {
  evaluate: 5_000,
  endorse: 15_000,
  submit: 5_000,
  commitStatus: 60_000,
};

export interface FabricLedgerOptions {
  deadlines?: Partial<FabricDeadlines>;
  /** Delays before reopening a failed event stream: the first, doubling up to the last. */
  reconnectMs?: { initial: number; max: number };
}

/** A transaction that lost a read conflict is proposed at most this many times in all. */
const MAX_ATTEMPTS = 2;

type Attempt<T> = { committed: SubmitResult<T> } | { retry: string };

export class FabricLedger implements Ledger {
  private readonly logger = new Logger('FabricLedger');
  private readonly client: grpc.Client;
  private readonly gateway: Gateway;
  private readonly network: Network;
  private readonly contract: Contract;
  private readonly deadlines: FabricDeadlines;
  private readonly reconnectMs: { initial: number; max: number };
  private readonly subscriptions = new Set<EventSubscription>();

  constructor(
    private readonly config: FabricLedgerConfig,
    options: FabricLedgerOptions = {},
  ) {
    this.deadlines = { ...DEFAULT_DEADLINES, ...options.deadlines };
    // At most 2 s between attempts while a peer is away: the events it missed (a revocation,
    // say) reach the projection within 2 s of its return, not after a backoff of up to 10 s.
    // A failed attempt costs one refused gRPC call.
    this.reconnectMs = options.reconnectMs ?? { initial: 250, max: 2_000 };
    this.client = new grpc.Client(
      config.peerEndpoint,
      grpc.credentials.createSsl(readFileSync(config.tlsCaPath)),
      {
        ...(config.peerHostAlias ? { 'grpc.ssl_target_name_override': config.peerHostAlias } : {}),
        // Reconnect to a restarted peer within seconds, not after gRPC's default backoff (2 min).
        'grpc.initial_reconnect_backoff_ms': 250,
        'grpc.max_reconnect_backoff_ms': 5_000,
        // Notice a silently dead connection (an event stream would wait forever). Peers refuse
        // pings more often than once a minute (peer.keepalive.minInterval).
        'grpc.keepalive_time_ms': 120_000,
        'grpc.keepalive_timeout_ms': 20_000,
      },
    );
    const after = (ms: number) => () => ({ deadline: Date.now() + ms });
    this.gateway = connect({
      client: this.client,
      identity: { mspId: config.mspId, credentials: readFileSync(config.certPath) },
      ...gatewaySigning(createPrivateKey(readFileSync(config.keyPath))),
      evaluateOptions: after(this.deadlines.evaluate),
      endorseOptions: after(this.deadlines.endorse),
      submitOptions: after(this.deadlines.submit),
      commitStatusOptions: after(this.deadlines.commitStatus),
    });
    this.network = this.gateway.getNetwork(config.channel);
    this.contract = this.network.getContract(config.chaincode);
  }

  async submit<T>(contract: ContractName, fn: string, args: string[]): Promise<SubmitResult<T>> {
    let reason = '';
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const outcome = await this.attempt<T>(`${contract}:${fn}`, args);
      if ('committed' in outcome) return outcome.committed;
      reason = outcome.retry;
      this.logger.warn({ transaction: `${contract}:${fn}`, reason, attempt }, 'proposing again');
    }
    throw new ConflictError(
      `A concurrent change to the same ledger entries won (${reason}); nothing was committed. ` +
        'Read the current state and try again.',
    );
  }

  /** One proposal: endorse, order, and wait for its validation code. */
  private async attempt<T>(name: string, args: string[]): Promise<Attempt<T>> {
    const proposal = this.contract.newProposal(name, { arguments: args });
    const transaction = await this.step('endorse', () => proposal.endorse()).catch((e) => {
      // Peers that disagree never let the transaction reach the orderer: safe to propose again.
      if (e instanceof EndorsementMismatch) return undefined;
      throw e;
    });
    if (!transaction) return { retry: 'the endorsing peers returned different results' };
    const commit = await this.step('submit', () => transaction.submit());
    const status = await this.step('commitStatus', () => commit.getStatus());
    if (status.successful) {
      return {
        committed: {
          txId: status.transactionId,
          blockNumber: Number(status.blockNumber),
          result: decode(transaction.getResult()) as T,
        },
      };
    }
    // The transaction is in a block but invalid: its validation code proves it did not commit.
    const code = validationCodeName(status.code);
    if (isReadConflict(status.code)) return { retry: code };
    this.logger.error({ transaction: name, code }, 'transaction invalidated');
    throw new LedgerUnavailableError(
      `The ledger invalidated the transaction (${code}); nothing was committed. ` +
        'This is a ledger configuration problem; report it if it persists.',
    );
  }

  /** Runs one gateway call, mapping its failure (see fabric-errors.ts). */
  private async step<R>(phase: FabricPhase, call: () => Promise<R>): Promise<R> {
    try {
      return await call();
    } catch (e) {
      if (phase === 'endorse' && isEndorsementMismatch(e)) throw new EndorsementMismatch();
      const mapped = fabricError(e, phase, this.deadlines[phase]);
      if (mapped instanceof LedgerUnavailableError) {
        this.logger.warn({ phase, grpcCode: (e as { code?: unknown }).code }, mapped.message);
      }
      throw mapped;
    }
  }

  async evaluate<T>(contract: ContractName, fn: string, args: string[]): Promise<T> {
    const bytes = await this.step('evaluate', () =>
      this.contract.evaluate(`${contract}:${fn}`, { arguments: args }),
    );
    return decode(bytes) as T;
  }

  /**
   * Where a transaction is on the channel: its block's number and its index in the block (the
   * peer's query system chaincode); null when the channel has no such transaction.
   */
  async positionOfTransaction(txId: string): Promise<{ block: number; tx: number } | null> {
    let bytes: Uint8Array;
    try {
      bytes = await this.network
        .getContract('qscc')
        .evaluateTransaction('GetBlockByTxID', this.config.channel, txId);
    } catch (e) {
      // qscc answers a transaction it does not know with an error naming it.
      if (/not found|no such transaction/i.test(String((e as Error).message))) return null;
      throw e;
    }
    const block = common.Block.deserializeBinary(bytes);
    const number = block.getHeader()?.getNumber();
    if (number === undefined) return null;
    const tx = (block.getData()?.getDataList_asU8() ?? []).findIndex((envelope) => {
      const payload = common.Payload.deserializeBinary(
        common.Envelope.deserializeBinary(envelope).getPayload_asU8(),
      );
      const header = payload.getHeader()?.getChannelHeader_asU8();
      return (
        header !== undefined && common.ChannelHeader.deserializeBinary(header).getTxId() === txId
      );
    });
    return { block: number, tx: tx < 0 ? Number.MAX_SAFE_INTEGER : tx };
  }

  subscribe(
    after: Checkpoint | null,
    handler: (event: LedgerEvent) => Promise<void>,
  ): EventSubscription {
    const cursor = new EventCursor(after);
    let open = true;
    let stream: CloseableAsyncIterable<ChaincodeEvent> | undefined;
    let wake: (() => void) | undefined;
    const done = (async () => {
      let delay = this.reconnectMs.initial;
      /** Failures in a row: the first of an outage is logged, then one in 30 (a minute at 2 s). */
      let failures = 0;
      while (open) {
        try {
          stream = await this.network.getChaincodeEvents(this.config.chaincode, {
            startBlock: BigInt(cursor.startBlock),
          });
          // close() may have run while the stream was being opened.
          if (!open) break;
          cursor.restart();
          for await (const event of stream) {
            const { position, deliver } = cursor.next(Number(event.blockNumber));
            if (!deliver) continue;
            try {
              await handler(toLedgerEvent(event, position));
            } catch (e) {
              throw new HandlerFailure(e);
            }
            cursor.advance(position);
            delay = this.reconnectMs.initial;
            if (failures) this.logger.log({ failures }, 'chaincode event stream delivers again');
            failures = 0;
            if (!open) break;
          }
        } catch (e) {
          if (!open) break;
          // A failed handler (e.g. its database is down) is treated like a broken stream: the
          // event is delivered again, from the same checkpoint, after the delay.
          const handlerFailed = e instanceof HandlerFailure;
          if (failures++ % 30 === 0)
            this.logger.warn(
              {
                grpcCode: handlerFailed ? undefined : (e as { code?: unknown }).code,
                errorType: handlerFailed ? (e.failure as Error)?.name : undefined,
                retryInMs: delay,
              },
              handlerFailed
                ? 'event handler failed; delivering the event again'
                : 'chaincode event stream failed; resuming after the last processed event',
            );
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, delay);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
          delay = Math.min(delay * 2, this.reconnectMs.max);
        } finally {
          stream?.close();
          stream = undefined;
        }
      }
    })();
    const subscription: EventSubscription = {
      close: async () => {
        open = false;
        stream?.close();
        wake?.();
        await done;
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  async ping(): Promise<void> {
    // A point read through the peer and the chaincode service; the chaincode's NOT_FOUND is an
    // answer, so only an unreachable or silent ledger fails the ping. (The contract API's own
    // org.hyperledger.fabric:GetMetadata would be the natural probe, but fails in
    // fabric-contract-api 2.5.8 with "classToPlain is not a function".)
    try {
      await this.evaluate('consent', 'GetConsent', ['custodia.ping']);
    } catch (e) {
      if (e instanceof LedgerUnavailableError) throw e;
    }
  }

  /** Ends event subscriptions and the connection to the peer. */
  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.gateway.close();
    this.client.close();
  }
}

/** Internal marker: endorsement failed because the peers' results differ. */
class EndorsementMismatch extends Error {}

/** Internal marker: the subscriber's handler threw (not the stream). */
class HandlerFailure extends Error {
  constructor(readonly failure: unknown) {
    super('event handler failed');
  }
}

function decode(bytes: Uint8Array): unknown {
  const text = Buffer.from(bytes).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function toLedgerEvent(event: ChaincodeEvent, position: Checkpoint): LedgerEvent {
  return {
    blockNumber: position.blockNumber,
    txIndex: position.txIndex,
    txId: event.transactionId,
    name: event.eventName,
    payload: decode(event.payload),
  };
}

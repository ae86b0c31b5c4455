// A decision's inputs (and the salt of their commitment) sealed under the patient's data key,
// bound to the decision's id: erasure destroys the key and so the inputs, and inputs moved to
// another decision's row do not open.
import { Injectable } from '@nestjs/common';
import { DataKeyRing, openField, sealField } from '../records/crypto';
import type { DecisionInputs } from './decision-inputs';
import type { DecisionRow } from './decision-repository';

const INPUTS_LABEL = 'ai-decision.inputs';

export interface OpenedInputs {
  salt: Buffer;
  inputs: DecisionInputs;
}

@Injectable()
export class DecisionSeal {
  constructor(private readonly keys: DataKeyRing) {}

  async seal(
    decisionId: string,
    patientId: string,
    { salt, inputs }: OpenedInputs,
  ): Promise<{ keyId: string; sealed: Buffer }> {
    const dek = await this.keys.liveKey(patientId);
    const plain = JSON.stringify({ salt: salt.toString('base64'), inputs });
    return { keyId: dek.id, sealed: sealField(dek.key, INPUTS_LABEL, decisionId, plain) };
  }

  /** The inputs, or null when they do not open: erased with the key, or altered. */
  async open(row: Pick<DecisionRow, 'id' | 'patientId' | 'keyId' | 'inputsSealed'>) {
    try {
      const key = await this.keys.key(row.keyId, row.patientId);
      const { salt, inputs } = JSON.parse(
        openField(key, INPUTS_LABEL, row.id, row.inputsSealed),
      ) as { salt: string; inputs: DecisionInputs };
      return { salt: Buffer.from(salt, 'base64'), inputs } satisfies OpenedInputs;
    } catch {
      return null;
    }
  }
}

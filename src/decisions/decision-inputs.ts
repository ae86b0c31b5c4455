// The inputs of one AI decision, as pure functions: how a deployed model says its inputs are
// prepared (its metadata), the inputs' canonical form and their salted commitment, and the
// standardised vector the model takes. No Nest, no TF.js, no I/O.
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';
import type { ModelPreset } from '../federated/model/architecture';
import { FEATURE_SCALES } from '../federated/model/features';

/** How to prepare a deployed model's inputs: fixed when it was deployed. */
export interface ModelMetadata {
  preset: ModelPreset;
  /** Inputs in this order, each as (value − centre) / scale, in `unit`. */
  features: { code: string; display: string; unit: string; centre: number; scale: number }[];
  /** SNOMED CT code of the condition whose probability the model answers. */
  label: string;
}

/** One input as used, and the record it was read from. */
export interface DecisionInput {
  code: string;
  display: string;
  value: number;
  unit: string;
  /** The record read, with its labels (so a listing shows it only to whom they admit). */
  source: {
    recordId: string;
    version: number;
    resourceType: string;
    category: string | null;
    sensitivity: 'NORMAL' | 'RESTRICTED';
  };
}

/** Everything a decision read: committed to on the ledger, sealed in the database. */
export interface DecisionInputs {
  /** The instant the inputs describe (ages are computed at it). */
  asOf: string;
  features: DecisionInput[];
}

const COMMITMENT_DOMAIN = 'custodia/ai-decision-inputs/v1';

/** The metadata of a model trained on `features` today, from the shared reference scales. */
export function metadataFor(
  preset: ModelPreset,
  features: readonly string[],
  label: string,
): ModelMetadata {
  return {
    preset,
    features: features.map((code) => {
      const { display, unit, centre, scale } = FEATURE_SCALES[code];
      return { code, display, unit, centre, scale };
    }),
    label,
  };
}

/** The unit each feature is read in. */
export function unitsOf(metadata: ModelMetadata): Record<string, string> {
  return Object.fromEntries(metadata.features.map((f) => [f.code, f.unit]));
}

/**
 * sha256(domain ‖ salt ‖ JCS(inputs)): binds the decision to exactly these inputs without
 * revealing them; the random salt (kept sealed with the inputs) stops a dictionary attack on
 * the few plausible values of a lab result.
 */
export function inputCommitment(salt: Buffer, inputs: DecisionInputs): string {
  return createHash('sha256')
    .update(COMMITMENT_DOMAIN)
    .update(salt)
    .update(canonicalize(inputs)!)
    .digest('hex');
}

/**
 * The model's input vector: each value standardised on the model's own scale. Throws when
 * the inputs are not the model's features, in its order and units.
 */
export function standardisedInputs(metadata: ModelMetadata, inputs: DecisionInputs): number[] {
  if (inputs.features.length !== metadata.features.length) {
    throw new RangeError(
      `the model takes ${metadata.features.length} inputs, got ${inputs.features.length}`,
    );
  }
  return metadata.features.map((f, i) => {
    const input = inputs.features[i];
    if (input.code !== f.code || input.unit !== f.unit) {
      throw new RangeError(`input ${i + 1} must be ${f.code} in ${f.unit}`);
    }
    if (!Number.isFinite(input.value)) throw new RangeError(`input ${f.code} is not finite`);
    return (input.value - f.centre) / f.scale;
  });
}

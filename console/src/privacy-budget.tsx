// What an ε the console shows means, said the same way wherever one is shown (a run's chart, a
// deployed model, the study form): per hospital, and with no amplification by sampling claimed,
// since every node is asked in every round (study-privacy.ts: sampleRate 1).

export const EPSILON_MEANING =
  'About ε: it is counted per hospital (one node’s whole update), not per patient, at δ = 1e-5, and adds up over the rounds. Every hospital is asked in every round (a sampling rate of 1), so no privacy amplification by sampling is claimed.';

/** The meaning of ε as a paragraph, with `id` for the ε it explains to point at. */
export function EpsilonMeaning({ id }: { id: string }) {
  return (
    <p className="muted" id={id} data-testid="epsilon-meaning">
      {EPSILON_MEANING}
    </p>
  );
}

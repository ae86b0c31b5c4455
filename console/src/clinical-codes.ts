// Names for the codes a study is defined by (features in LOINC, the label in SNOMED CT). The API
// answers a study's codes without names, so the console knows those the synthetic cohort and
// the training nodes use (the server's FEATURE_SCALES); any other code is shown as it is.

const CODE_NAMES: Record<string, string> = {
  '2345-7': 'Glucose [Mass/volume] in Serum or Plasma',
  '4548-4': 'Hemoglobin A1c/Hemoglobin.total in Blood',
  '39156-5': 'Body mass index (BMI) [Ratio]',
  '8480-6': 'Systolic blood pressure',
  '2085-9': 'Cholesterol in HDL [Mass/volume] in Serum or Plasma',
  '30525-0': 'Age',
  '44054006': 'Diabetes mellitus type 2',
};

/** The code's name with the code beside it, "Systolic blood pressure (8480-6)"; else the code. */
export function namedCode(code: string): string {
  return Object.hasOwn(CODE_NAMES, code) ? `${CODE_NAMES[code]} (${code})` : code;
}

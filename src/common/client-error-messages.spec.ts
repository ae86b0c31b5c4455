import { withoutValues } from './client-error-messages';

describe('client error messages', () => {
  it.each([
    [
      'Variable "$first" got invalid value "Jane Doe"; Expected type "Int". Int cannot represent non-integer value: "Jane Doe"',
      'Variable "$first" got an invalid value; Expected type "Int".',
    ],
    [
      'Variable "$input" got invalid value "Jane" at "input.purpose"; Value "Jane" does not exist in "Purpose" enum.',
      'Variable "$input" got an invalid value at "input.purpose"; Expected type "Purpose".',
    ],
    [
      'Variable "$first" got invalid value "Jane"; Int cannot represent non-integer value: "Jane"',
      'Variable "$first" got an invalid value; Expected type "Int".',
    ],
    [
      'Variable "$input" got invalid value { name: "Jane" }; Field "granteeId" of required type "ID!" was not provided.',
      'Variable "$input" got an invalid value; Field "granteeId" of required type "ID!" was not provided.',
    ],
    [
      'Variable "$input" got invalid value { Jane: 1 }; Field "Jane" is not defined by type "GrantConsentInput".',
      'Variable "$input" got an invalid value; Field "Jane" is not defined by type "GrantConsentInput".',
    ],
    [
      'Variable "$ids" got invalid value ["Jane", null] at "ids[1]"; Expected non-nullable type "ID!" not to be null.',
      'Variable "$ids" got an invalid value at "ids[1]"; Expected non-nullable type "ID!" not to be null.',
    ],
    ['Expected value of type "Int", found "Jane Doe".', 'Expected value of type "Int".'],
    [
      'Expected value of type "Purpose!", found JANE; Enum "Purpose" cannot represent non-enum value: JANE.',
      'Expected value of type "Purpose!".',
    ],
    // A literal in the document, refused by its scalar or enum (graphql-js 16's own words).
    ['Int cannot represent non-integer value: "JANE-DOE-SSN-1"', 'Expected value of type "Int".'],
    ['String cannot represent a non string value: 12', 'Expected value of type "String".'],
    [
      'Enum "Sensitivity" cannot represent non-enum value: "Jane".',
      'Expected value of type "Sensitivity".',
    ],
    [
      'Value "JANE_DOE" does not exist in "Sensitivity" enum. Did you mean the enum value "NORMAL"?',
      'Expected value of type "Sensitivity".',
    ],
    [
      'Syntax Error: Expected Name, found String "Jane Doe".',
      'Syntax Error: Expected Name, found String.',
    ],
    ['Syntax Error: Unexpected Name "Jane".', 'Syntax Error: Unexpected Name.'],
    [
      'Unknown operation named "Jane".',
      'No operation in the document has the name given as operationName.',
    ],
  ])('%s', (message, expected) => {
    expect(withoutValues(message)).toBe(expected);
  });

  it.each([
    'Syntax Error: Expected Name, found <EOF>.',
    'Variable "$p" of required type "ID!" was not provided.',
    'Cannot query field "nope" on type "Query".',
    'Syntax Error: Document contains more than 5000 tokens. Parsing aborted.',
  ])('keeps a message that quotes no value: %s', (message) => {
    expect(withoutValues(message)).toBe(message);
  });
});

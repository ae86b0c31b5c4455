// graphql-js quotes the offending value in its request errors ("Variable "$first" got invalid
// value "abc"; ...", "Expected value of type "ID!", found "...".", "found String "..."."). A
// value may be PHI, and the answer may be logged by a proxy, so those messages are rebuilt
// from their value-free parts: names, types and paths, all matched with narrow character sets.
const TYPE = String.raw`[\w[\]!]+`;

const VARIABLE = /^Variable "\$(\w+)" got invalid value /;
/** Why a variable's value was refused, in words that quote no value. */
const REASONS: [RegExp, (m: RegExpExecArray) => string][] = [
  [
    new RegExp(
      '; (' +
        [
          `Expected (?:non-nullable )?type "${TYPE}"(?: to be an object| not to be null)?`,
          `Field "\\w+" of required type "${TYPE}" was not provided`,
          `Field "\\w+" is not defined by type "\\w+"`,
          `Field "\\w+" must be non-null`,
          `Exactly one key must be specified for OneOf type "\\w+"`,
        ].join('|') +
        ')',
    ),
    (m) => m[1],
  ],
  // A scalar's or an enum's own message quotes the value: keep only the type it expected.
  [/; (?:Enum ")?(\w+)"? cannot represent /, (m) => `Expected type "${m[1]}"`],
  [/; Value "[\s\S]*" does not exist in "(\w+)" enum/, (m) => `Expected type "${m[1]}"`],
];
const LITERAL = new RegExp(`^Expected value of type "(${TYPE})", found `);
/**
 * A literal refused by its scalar or enum, in the scalar's or graphql-js's own words, which
 * quote it: 'Int cannot represent non-integer value: "…"', 'Enum "Purpose" cannot represent
 * non-enum value: …', 'Value "…" does not exist in "Purpose" enum.'
 */
const SCALAR_LITERAL = /^(?:Enum ")?(\w+)"? cannot represent /;
const ENUM_LITERAL = /^Value "[\s\S]*" does not exist in "(\w+)" enum\./;
const TOKEN_DESCRIPTION = /(found|Unexpected) (Name|Int|Float|String|BlockString) "[\s\S]*"\.$/;
const UNKNOWN_OPERATION = /^Unknown operation named "/;

/** The message of a client error, without any input value it quoted. */
export function withoutValues(message: string): string {
  const variable = VARIABLE.exec(message);
  if (variable) {
    const name = variable[1];
    const at = new RegExp(` at "(${name}(?:\\.\\w+|\\[\\d+\\])*)"; `).exec(message)?.[1];
    const reason = REASONS.map(([re, say]) => {
      const m = re.exec(message);
      return m && say(m);
    }).find(Boolean);
    return (
      `Variable "$${name}" got an invalid value` +
      (at ? ` at "${at}"` : '') +
      (reason ? `; ${reason.replace(/\.$/, '')}.` : '.')
    );
  }
  const literal = LITERAL.exec(message);
  if (literal) return `Expected value of type "${literal[1]}".`;
  const refused = SCALAR_LITERAL.exec(message) ?? ENUM_LITERAL.exec(message);
  if (refused) return `Expected value of type "${refused[1]}".`;
  if (TOKEN_DESCRIPTION.test(message)) return message.replace(TOKEN_DESCRIPTION, '$1 $2.');
  if (UNKNOWN_OPERATION.test(message)) {
    return 'No operation in the document has the name given as operationName.';
  }
  return message;
}

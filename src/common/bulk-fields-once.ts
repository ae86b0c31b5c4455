// A validation rule: a whole-profile field (an export or an import of everything a patient
// has) at most once per operation. The cost limit counts a field's shape, not the work behind
// it, and exportMyData returns one JSON value: fifteen aliases of it cost as little as one and
// answered about 17 MB for a patient with 278 records.
import {
  GraphQLError,
  Kind,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';

/** Fields that read or write a patient's whole profile. */
export const BULK_FIELDS: ReadonlySet<string> = new Set(['exportMyData', 'importBundle']);

export const BulkFieldsOnce: ValidationRule = (context) => {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of context.getDocument().definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition);
  }
  /** Occurrences of each bulk field under `set`, fragment spreads expanded (each cycle once). */
  const count = (set: SelectionSetNode, seen: Set<string>, found: Map<string, number>) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (BULK_FIELDS.has(name)) found.set(name, (found.get(name) ?? 0) + 1);
        if (selection.selectionSet) count(selection.selectionSet, seen, found);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        count(selection.selectionSet, seen, found);
      } else {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || seen.has(fragment.name.value)) continue;
        seen.add(fragment.name.value);
        count(fragment.selectionSet, seen, found);
        seen.delete(fragment.name.value);
      }
    }
    return found;
  };
  return {
    OperationDefinition(node) {
      for (const [name, times] of count(node.selectionSet, new Set(), new Map())) {
        if (times > 1) {
          context.reportError(
            new GraphQLError(`${name} may be asked for once per operation, not ${times} times.`, {
              nodes: node,
            }),
          );
        }
      }
    },
  };
};

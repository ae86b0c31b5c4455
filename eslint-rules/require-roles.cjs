// `custodia/require-roles`: every GraphQL operation, field resolver and HTTP route handler
// declares who may call it — @Roles(...), @AnyRole() or @Public(), on the method or its class.
// Without this, a new resolver would silently admit every authenticated role.
'use strict';

const HANDLER_DECORATORS = new Set([
  'Query',
  'Mutation',
  'Subscription',
  'ResolveField',
  'Get',
  'Post',
  'Put',
  'Patch',
  'Delete',
  'All',
]);
const ACCESS_DECORATORS = new Set(['Roles', 'AnyRole', 'Public']);

function decoratorName(decorator) {
  const e = decorator.expression;
  const callee = e.type === 'CallExpression' ? e.callee : e;
  if (callee.type === 'Identifier') return callee.name;
  if (callee.type === 'MemberExpression' && callee.property.type === 'Identifier') {
    return callee.property.name;
  }
  return undefined;
}

function names(node) {
  return (node.decorators ?? []).map(decoratorName).filter(Boolean);
}

/** @type {import('eslint').Rule.RuleModule} */
module.exports = {
  meta: {
    type: 'problem',
    docs: { description: 'resolvers and routes must declare their roles' },
    schema: [],
    messages: {
      missing:
        '{{handler}} is a @{{kind}} handler without @Roles(...), @AnyRole() or @Public() (on it or its class): say who may call it.',
    },
  },
  create(context) {
    return {
      MethodDefinition(node) {
        const own = names(node);
        const kind = own.find((n) => HANDLER_DECORATORS.has(n));
        if (!kind) return;
        const cls = node.parent?.parent;
        const inherited = cls && cls.type.startsWith('Class') ? names(cls) : [];
        if ([...own, ...inherited].some((n) => ACCESS_DECORATORS.has(n))) return;
        const handler = node.key.type === 'Identifier' ? node.key.name : 'this method';
        context.report({ node: node.key, messageId: 'missing', data: { handler, kind } });
      },
    };
  },
};

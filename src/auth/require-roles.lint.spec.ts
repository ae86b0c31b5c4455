// The lint rule that makes a forgotten @Roles an error (eslint-rules/require-roles.cjs).
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const rule = require('../../eslint-rules/require-roles.cjs') as import('eslint').Rule.RuleModule;

const tester = new RuleTester({ languageOptions: { parser: tseslint.parser } });

tester.run('custodia/require-roles', rule, {
  valid: [
    `class R { @Roles('PATIENT') @Query(() => X) a() {} }`,
    `class R { @AnyRole() @Mutation(() => X) a() {} }`,
    `@Public() class C { @Get('health') a() {} }`,
    `@Roles('ADMIN') class R { @ResolveField(() => X) a() {} }`,
    `class R { @Roles('NODE') @Post('x') @HttpCode(202) a() {} }`,
    // Not a handler: helpers and plain methods need nothing.
    `class S { helper() {} @Other() b() {} }`,
  ],
  invalid: [
    { code: `class R { @Query(() => X) a() {} }`, errors: [{ messageId: 'missing' }] },
    {
      code: `class R { @Roles('X') @Query(() => X) a() {} @ResolveField(() => Y) b() {} }`,
      errors: [{ messageId: 'missing', data: { handler: 'b', kind: 'ResolveField' } }],
    },
    { code: `@Controller('fl') class C { @Get('m') a() {} }`, errors: [{ messageId: 'missing' }] },
    { code: `class R { @graphql.Mutation() a() {} }`, errors: [{ messageId: 'missing' }] },
  ],
});

// One snapshot of every GraphQL operation, field resolver and HTTP route with the roles it
// admits and whether its answer passes through the (enforced) consent check, so that a change
// of who can reach what shows up in review as a change of this snapshot. On either ledger
// (test/permissions.e2e-spec.ts: embedded; test/fabric: Fabric) against the one committed
// snapshot, test/__snapshots__/permissions.e2e-spec.ts.snap (test/fabric/snapshot-resolver.cjs
// points the Fabric spec there): on Fabric the API admits exactly whom it admits embedded.
import { DiscoveryService, MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { RESOLVER_NAME_METADATA, RESOLVER_TYPE_METADATA } from '@nestjs/graphql';
import { CONSENT_CHECK_KEY, PUBLIC_KEY, ROLES, ROLES_KEY } from '../../src/auth';
import { LedgerUnderTest } from '../helpers/ledger-under-test';
import { TestApi } from '../helpers/test-api';

/** @ResolveField's marker (not exported by @nestjs/graphql's entry point). */
const RESOLVER_PROPERTY_METADATA = 'graphql:resolve_property';

/**
 * The snapshot's name is its key in the committed file, so the describe and test names carry no
 * ledger: each ledger's run says which it is by its spec file.
 */
export function permissionsSuite(ledger: LedgerUnderTest): void {
  describe('who can reach what', () => {
    let api: TestApi;

    beforeAll(async () => {
      api = await ledger.startApi();
    });
    afterAll(() => api?.stop());

    it('matches the committed permission snapshot', () => {
      const discovery = new DiscoveryService(api.server.app.get(ModulesContainer));
      const scanner = new MetadataScanner();
      const reflector = api.server.app.get(Reflector);
      const operations: Record<string, { roles: string[]; consentChecked: boolean }> = {};
      const access = (handler: () => unknown, cls: () => unknown) => {
        const targets = [handler, cls];
        const isPublic = reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets) ?? false;
        const roles = reflector.getAllAndOverride<string[]>(ROLES_KEY, targets);
        return {
          roles: isPublic ? ['PUBLIC'] : roles ? [...roles].sort() : [...ROLES].sort(),
          consentChecked: reflector.getAllAndOverride<boolean>(CONSENT_CHECK_KEY, targets) ?? false,
        };
      };
      // GraphQL: queries, mutations and field resolvers (Type.field).
      for (const wrapper of discovery.getProviders()) {
        const instance = wrapper.instance as object | undefined;
        if (!instance || !wrapper.metatype) continue;
        const cls = wrapper.metatype as () => unknown;
        const proto = Object.getPrototypeOf(instance) as Record<string, () => unknown>;
        for (const method of scanner.getAllMethodNames(proto)) {
          const handler = proto[method];
          const name = (Reflect.getMetadata(RESOLVER_NAME_METADATA, handler) as string) || method;
          const type = Reflect.getMetadata(RESOLVER_TYPE_METADATA, handler) as string | undefined;
          if (type === 'Query' || type === 'Mutation') {
            operations[`${type}.${name}`] = access(handler, cls);
          } else if (Reflect.getMetadata(RESOLVER_PROPERTY_METADATA, handler)) {
            const parent = (Reflect.getMetadata(RESOLVER_TYPE_METADATA, cls) as string).replace(
              /Model$/,
              '',
            );
            operations[`${parent}.${name}`] = access(handler, cls);
          }
        }
      }
      // HTTP routes: METHOD /path.
      for (const wrapper of discovery.getControllers()) {
        const instance = wrapper.instance as object | undefined;
        if (!instance || !wrapper.metatype) continue;
        const cls = wrapper.metatype as () => unknown;
        const base = String(Reflect.getMetadata(PATH_METADATA, cls) ?? '');
        const proto = Object.getPrototypeOf(instance) as Record<string, () => unknown>;
        for (const method of scanner.getAllMethodNames(proto)) {
          const handler = proto[method];
          const verb = Reflect.getMetadata(METHOD_METADATA, handler) as number | undefined;
          if (verb === undefined) continue;
          const path = [base, String(Reflect.getMetadata(PATH_METADATA, handler) ?? '')]
            .filter((p) => p && p !== '/')
            .join('/');
          operations[`${RequestMethod[verb]} /${path}`] = access(handler, cls);
        }
      }
      const sorted = Object.fromEntries(
        Object.entries(operations).sort(([a], [b]) => a.localeCompare(b)),
      );
      expect(sorted).toMatchSnapshot();
      // Every route is accounted for, so a new one cannot slip past the snapshot unseen.
      expect(Object.keys(sorted)).toEqual(
        expect.arrayContaining([
          'GET /fl/runs/:runId/model',
          'POST /fl/runs/:runId/rounds/:round/updates',
          'Study.runs',
          'TrainingRun.updates',
        ]),
      );
    });
  });
}

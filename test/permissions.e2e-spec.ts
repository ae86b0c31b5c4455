// One snapshot of every GraphQL operation with the roles it admits and whether its answer
// passes through the consent check, so that a change of who can reach what shows up in
// review as a change of this snapshot.
import { DiscoveryService, MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { RESOLVER_NAME_METADATA, RESOLVER_TYPE_METADATA } from '@nestjs/graphql';
import { CONSENT_CHECK_KEY, PUBLIC_KEY, ROLES, ROLES_KEY } from '../src/auth';
import { TestApi } from './helpers/test-api';

describe('who can reach what', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await TestApi.start();
  });
  afterAll(() => api?.stop());

  it('matches the committed permission snapshot', () => {
    const discovery = new DiscoveryService(api.server.app.get(ModulesContainer));
    const scanner = new MetadataScanner();
    const reflector = api.server.app.get(Reflector);
    const operations: Record<string, { roles: string[]; consentChecked: boolean }> = {};
    for (const wrapper of discovery.getProviders()) {
      const instance = wrapper.instance as object | undefined;
      if (!instance || !wrapper.metatype) continue;
      const proto = Object.getPrototypeOf(instance) as Record<string, () => unknown>;
      for (const method of scanner.getAllMethodNames(proto)) {
        const handler = proto[method];
        const type = Reflect.getMetadata(RESOLVER_TYPE_METADATA, handler) as string | undefined;
        if (type !== 'Query' && type !== 'Mutation') continue;
        const name = (Reflect.getMetadata(RESOLVER_NAME_METADATA, handler) as string) || method;
        const targets = [handler, wrapper.metatype as () => unknown];
        const isPublic = reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets) ?? false;
        const roles = reflector.getAllAndOverride<string[]>(ROLES_KEY, targets);
        operations[`${type}.${name}`] = {
          roles: isPublic ? ['PUBLIC'] : roles ? [...roles].sort() : [...ROLES].sort(),
          consentChecked: reflector.getAllAndOverride<boolean>(CONSENT_CHECK_KEY, targets) ?? false,
        };
      }
    }
    const sorted = Object.fromEntries(
      Object.entries(operations).sort(([a], [b]) => a.localeCompare(b)),
    );
    expect(sorted).toMatchSnapshot();
  });
});

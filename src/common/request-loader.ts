// A field resolver that would read once per parent (N+1) asks a RequestLoader instead: the
// keys asked for while one GraphQL request resolves a level are read in one batch. Loaders
// live as long as their request (keyed by its context object) and cache nothing, so a
// mutation's later fields never see a value read before it wrote.
import DataLoader from 'dataloader';

export class RequestLoader<K, V> {
  private readonly perRequest = new WeakMap<object, DataLoader<K, V>>();

  /** `batch` answers one value per key, in the keys' order. */
  constructor(private readonly batch: (keys: readonly K[]) => Promise<readonly V[]>) {}

  /** `request`: the GraphQL context object of the request asking. */
  load(request: object, key: K): Promise<V> {
    let loader = this.perRequest.get(request);
    if (!loader) {
      loader = new DataLoader<K, V>((keys) => this.batch(keys), { cache: false });
      this.perRequest.set(request, loader);
    }
    return loader.load(key);
  }
}

/**
 * A storage driver over another that fails chosen calls with a transient StorageError (a
 * connection reset), for tests of what retries them. `fail.list = [n, after]` fails the next n
 * listings after each has yielded `after` objects; the other counts fail the next n calls.
 */
import { StorageError } from '../../src/common/errors.js';
import type { ObjectInfo, Op, StorageDriver } from '../../storage-drivers/types.js';

export interface Faults {
  list?: [count: number, after: number];
  delete?: number;
  sweep?: number;
  stat?: number;
}

export interface FlakyDriver extends StorageDriver {
  /** Faults still to inject (decremented as they happen). */
  fail: Faults;
  /** Calls made, by operation (failed ones included). */
  calls: { list: number; delete: number; sweep: number; stat: number };
}

const reset = (what: string): StorageError => new StorageError('flaky', `unable to ${what}: connection reset (injected)`, { transient: true });

export function flakyDriver(inner: StorageDriver, fail: Faults, o: { sweep?: boolean } = {}): FlakyDriver {
  const calls = { list: 0, delete: 0, sweep: 0, stat: 0 };
  const d: FlakyDriver = {
    name: inner.name,
    features: inner.features,
    location: inner.location,
    fail,
    calls,
    async stat(path: string, op?: Op) {
      calls.stat++;
      if ((fail.stat ?? 0) > 0) {
        fail.stat!--;
        throw reset(`stat '${path}'`);
      }
      return inner.stat(path, op);
    },
    async *list(prefix: string, op?: Op): AsyncGenerator<ObjectInfo> {
      calls.list++;
      const f = fail.list;
      const failing = f !== undefined && f[0] > 0;
      if (failing) f[0]--;
      let n = 0;
      for await (const info of inner.list(prefix, op)) {
        if (failing && n === f[1]) throw reset(`list '${prefix}'`);
        n++;
        yield info;
      }
      if (failing) throw reset(`list '${prefix}'`);
    },
    get: (path, op) => inner.get(path, op),
    put: (path, body, op) => inner.put(path, body, op),
    async delete(paths: string[], op?: Op) {
      calls.delete++;
      if ((fail.delete ?? 0) > 0) {
        fail.delete!--;
        throw reset(`delete ${paths.length} objects`);
      }
      return inner.delete(paths, op);
    },
    close: () => inner.close(),
  };
  if (o.sweep) {
    d.sweep = async (prefix: string) => {
      calls.sweep++;
      if ((fail.sweep ?? 0) > 0) {
        fail.sweep!--;
        throw reset(`sweep '${prefix}'`);
      }
      return 0;
    };
  }
  return d;
}

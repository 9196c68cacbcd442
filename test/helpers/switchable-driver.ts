/** A storage driver that a unit test can make unreachable: every call fails like a network outage while `down`. */
import { StorageError } from '../../src/common/errors.js';
import type { StorageDriver } from '../../storage-drivers/types.js';

/** A store that can be made unreachable: every call fails like a network outage while `down`. */
export function switchable(d: StorageDriver): StorageDriver & { down: boolean } {
  const state = { down: false };
  return new Proxy(d, {
    get(target, prop, recv) {
      if (prop === 'down') return state.down;
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...args: unknown[]) => {
        if (state.down) {
          const err = new StorageError('memory', 'connect ECONNREFUSED 127.0.0.1:9 (made unreachable by the test)', { transient: true });
          if (prop === 'list') return (async function* () { throw err; })();
          return Promise.reject(err);
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
    set(_t, prop, value) {
      if (prop !== 'down') return false;
      state.down = value as boolean;
      return true;
    },
  }) as StorageDriver & { down: boolean };
}


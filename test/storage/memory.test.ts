import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { createMemoryStore, dropMemoryStore, MemoryDriver } from '../../storage-drivers/memory/memory-driver.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { listAll, readAll, storageConformance } from './conformance.js';

let n = 0;
const uniqueName = (): string => `conformance-${process.pid}-${++n}`;

storageConformance('memory', async () => {
  const name = uniqueName();
  const driver = createMemoryStore(name);
  return { driver, cleanup: async () => dropMemoryStore(name) };
}, { holdsObjectsInMemory: true });

describe('memory driver specifics', () => {
  const made: string[] = [];
  const make = (): { name: string; driver: MemoryDriver } => {
    const name = uniqueName();
    made.push(name);
    return { name, driver: createMemoryStore(name) };
  };
  afterEach(() => {
    for (const name of made.splice(0)) dropMemoryStore(name);
  });

  it('opens a store the program made through the registry, sharing its objects', async () => {
    const { name, driver } = make();
    await driver.put('a/b', Buffer.from('shared'));
    const other = await openDriver(`memory://${name}`);
    expect(other.name).toBe('memory');
    expect(other.location).toBe(`memory://${name}`);
    expect((await readAll(await other.get('a/b'))).toString()).toBe('shared');
    await other.put('c', Buffer.from('back'));
    expect((await listAll(driver, '')).map((i) => i.path)).toEqual(['a/b', 'c']);
  });

  it('refuses a store nobody made (a pgark command given memory://) with a ConfigError', async () => {
    const err = await openDriver('memory://never-made').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/no memory store 'never-made'.*vanish at exit/);
  });

  it.each(['memory://name/path', 'memory://user@name', 'memory://name?x=1', 'memory://bad%20name'])('refuses the malformed location %s', async (loc) => {
    await expect(openDriver(loc)).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses to make a store twice', () => {
    const { name } = make();
    expect(() => createMemoryStore(name)).toThrow(ConfigError);
  });

  it('keeps a copy of what was put: the producer reusing its buffer does not change the object', async () => {
    const { driver } = make();
    const buf = Buffer.from('original');
    await driver.put('k1', buf);
    const chunk = Buffer.from('streamed');
    await driver.put('k2', Readable.from([chunk]));
    buf.fill(0);
    chunk.fill(0);
    expect((await readAll(await driver.get('k1'))).toString()).toBe('original');
    expect((await readAll(await driver.get('k2'))).toString()).toBe('streamed');
  });

  it('a read in progress keeps the version it started with when the key is replaced', async () => {
    const { driver } = make();
    await driver.put('k', Buffer.alloc(3 * 1024 * 1024, 1));
    const reading = await driver.get('k');
    await driver.put('k', Buffer.from('new'));
    const got = await readAll(reading);
    expect(got.length).toBe(3 * 1024 * 1024);
    expect(got.every((b) => b === 1)).toBe(true);
  });
});

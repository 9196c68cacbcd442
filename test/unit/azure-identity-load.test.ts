/** @azure/identity is loaded only when the azure driver uses Microsoft Entra ID. */
import { describe, expect, it, vi } from 'vitest';
import type { TokenCredential } from '@azure/core-auth';
import { createAzureDriver } from '../../storage-drivers/azure/azure-driver.js';
import { loadIdentity } from '../../storage-drivers/azure/azure-token.js';

const KEY = Buffer.from('k'.repeat(64)).toString('base64');
const SAS = 'sv=2024-08-04&sp=racwdl&sig=AbC%2Bsig%3D';

function spyLoader() {
  const tokens: TokenCredential = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3_600_000 }) };
  return vi.fn(async () => ({ DefaultAzureCredential: class { getToken = tokens.getToken; } as unknown as new () => TokenCredential }));
}

describe('lazy @azure/identity', () => {
  it.each([
    ['a shared key', { AZURE_STORAGE_KEY: KEY }],
    ['a SAS token', { AZURE_STORAGE_SAS_TOKEN: SAS }],
    ['a connection string', { AZURE_STORAGE_CONNECTION_STRING: `AccountName=acct;AccountKey=${KEY}` }],
  ])('is not loaded with %s', async (_label, env) => {
    const loader = spyLoader();
    const d = await createAzureDriver(new URL('azure://acct/cont/p'), {}, env, loader);
    await d.close();
    expect(loader).not.toHaveBeenCalled();
  });

  it('is loaded once when nothing else is set', async () => {
    const loader = spyLoader();
    const d = await createAzureDriver(new URL('azure://acct/cont/p'), {}, {}, loader);
    await d.close();
    expect(loader).toHaveBeenCalledTimes(1);
  });

  it('the real loader returns DefaultAzureCredential', async () => {
    const m = await loadIdentity();
    expect(m.DefaultAzureCredential.name).toBe('DefaultAzureCredential');
  });
});

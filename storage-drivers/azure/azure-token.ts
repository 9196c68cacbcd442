/**
 * The Microsoft Entra ID credential of the azure driver: `@azure/identity`'s
 * DefaultAzureCredential, which tries, in order, environment service principal
 * (AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH), workload identity
 * (AZURE_FEDERATED_TOKEN_FILE), managed identity, Azure CLI, Azure PowerShell and Azure
 * Developer CLI. The package is imported only when no storage key, SAS or connection string is
 * set (resolveAzureAccess chose 'entraId'), so the other credentials cost nothing to load.
 */
import type { TokenCredential } from '@azure/core-auth';

/** How the identity SDK is loaded; tests replace it to prove the load is lazy. */
export type IdentityLoader = () => Promise<{ DefaultAzureCredential: new () => TokenCredential }>;

export const loadIdentity: IdentityLoader = async () => {
  const m = await import('@azure/identity');
  return { DefaultAzureCredential: m.DefaultAzureCredential };
};

/** Loads counted for tests (`identityLoads()`). */
let loads = 0;

export function identityLoads(): number {
  return loads;
}

export async function createEntraIdCredential(loader: IdentityLoader = loadIdentity): Promise<TokenCredential> {
  loads += 1;
  const { DefaultAzureCredential } = await loader();
  return new DefaultAzureCredential();
}

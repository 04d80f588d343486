/**
 * What the dashboard needs beyond the core package, and the message that says how to install it.
 * No import of the dashboard's own dependencies here: the CLI reads this when they are missing.
 */

/** The dashboard's optional peer dependencies (package.json peerDependenciesMeta), pinned together. */
export const DASHBOARD_PACKAGES = [
  'express@^5.2.1',
  '@bull-board/api@9.10.1',
  '@bull-board/express@9.10.1',
  '@bull-board/ui@9.10.1',
] as const;

export const DASHBOARD_INSTALL_COMMAND = `npm install ${DASHBOARD_PACKAGES.join(' ')}`;

/** The package a failed import could not find, when the failure is a missing package. */
export function missingPackage(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || typeof e.message !== 'string') return undefined;
  return /Cannot find (?:package|module) '([^']+)'/.exec(e.message)?.[1];
}

/** True when this module's file is the script node was started with (not imported). */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export function invokedDirectly(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return moduleUrl === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

/** Which gateway build this host needs. */
import type { Platform } from '../../workflows/types.js';
import { FailureType, refuse } from '../support.js';

export function platformOf(nodePlatform: string, nodeArch: string): Platform {
  const os = nodePlatform === 'linux' ? 'linux' : nodePlatform === 'darwin' ? 'darwin' : undefined;
  const arch = nodeArch === 'x64' ? 'amd64' : nodeArch === 'arm64' ? 'arm64' : undefined;
  if (!os || !arch) {
    throw refuse(
      FailureType.Unsupported,
      `unsupported platform ${nodePlatform}/${nodeArch}: DefenseClaw ships gateways for darwin and linux on amd64 and arm64`,
    );
  }
  return { os, arch };
}

/** Activity: the platform of the host this worker runs on. */
export async function detectPlatform(): Promise<Platform> {
  return platformOf(process.platform, process.arch);
}

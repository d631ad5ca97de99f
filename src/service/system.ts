import os from 'node:os';
import { ociArchitecture } from '../image/oci.js';
import { VERSION } from '../version.js';
import { sendJson } from './http.js';
import type { Call, Router } from './router.js';
import { API_VERSION, MIN_API_VERSION } from './versions.js';
import { registerSystemInfo } from './system-info.js';

/** The headers every client reads from `/_ping` to negotiate (docker's client downgrades to Api-Version). */
function pingHeaders(call: Call): void {
  const res = call.res!;
  res.setHeader('Api-Version', API_VERSION);
  res.setHeader('Ostype', 'linux');
  res.setHeader('Builder-Version', '1');
  res.setHeader('Docker-Experimental', 'false');
  res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
  res.setHeader('Pragma', 'no-cache');
}

/** `/_ping`, `/version`, and the system endpoints. */
export function registerSystem(r: Router): void {
  r.add('GET', '/_ping', async (call) => {
    pingHeaders(call);
    const res = call.res!;
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': call.req.method === 'HEAD' ? 0 : 2 });
    res.end(call.req.method === 'HEAD' ? undefined : 'OK');
  });
  r.add('GET', '/version', async (call) => {
    sendJson(call.res!, 200, {
      Platform: { Name: 'Berth' },
      Components: [{ Name: 'Engine', Version: VERSION, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: ociArchitecture(), KernelVersion: os.release() } }],
      Version: VERSION,
      ApiVersion: API_VERSION,
      MinAPIVersion: MIN_API_VERSION,
      GitCommit: '',
      GoVersion: `node ${process.version}`,
      Os: 'linux',
      Arch: ociArchitecture(),
      KernelVersion: os.release(),
      BuildTime: '',
    });
  });
  registerSystemInfo(r);
}

/**
 * Remote engines: the EngineApi over the Docker Engine API of another Berth (`berth system service`, or
 * `berth system dial-stdio` through ssh), and the contexts that name them. `new Engine({ host })` in
 * api/ returns a RemoteEngine; the CLI's -H/--host, BERTH_HOST, --context and BERTH_CONTEXT pick one.
 */
export { RemoteEngine, type RemoteEngineApi, type RemoteSystemApi, type RemoteVersion } from './engine.js';
export { parseHost, type HostTarget } from './uri.js';
export { createBodyOf } from './create-body.js';

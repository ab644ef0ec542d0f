export { type BackoffOptions, backoffDelay } from './backoff.js'
export {
  type CloseInfo,
  createSwitchboardClient,
  type SwitchboardClient,
  type SwitchboardClientOptions,
  type TokenResult,
} from './create-switchboard-client.js'
export { cursorOf, resumeVariableOf } from './resume-cursor.js'

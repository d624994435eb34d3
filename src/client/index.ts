/** The stated client library: what other tools import (the CLI uses nothing else). */
export { Connection, type ConnectionOptions, type Push } from './connection.ts';
export { StateWait, type InitOptions, type WaitProgress, type WaitResult } from './statewait.ts';
export { connect, initStateWait, defaultUrl, defaultToken } from './api.ts';
export { runPlan, type Plan, type PlanCommand, type Started } from './plan.ts';
export { listWaits, cancelWaitById, type WaitSummary } from './waits.ts';

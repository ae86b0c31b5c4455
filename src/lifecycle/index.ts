export { DrainOutcome, HttpDrain } from './http-drain';
export { withinDeadline } from './deadline';

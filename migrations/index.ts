// Every migration, in order. Listed explicitly so that compiled and test runs load the same set.
import { Foundation1764388800000 } from './1764388800000-foundation';

export const MIGRATIONS = [Foundation1764388800000];

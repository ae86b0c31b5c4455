export {
  CONSOLE_CSP,
  CONSOLE_DIST,
  consoleAssets,
  consoleCsp,
  type ConsoleSignIn,
} from './console-assets';

export { CONSOLE_CSP, CONSOLE_DIST, consoleAssets } from './console-assets';

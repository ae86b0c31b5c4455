// Chooses the TensorFlow.js backend once per process: the native one (@tensorflow/tfjs-node)
// when it is installed and its addon loads, else WebAssembly from the installed package's own
// files (never the network), else the plain JavaScript one. None of them is required to install,
// start or test Custodia; a missing one only makes training slower.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

/** TF.js's own names: 'tensorflow' is the native backend of @tensorflow/tfjs-node. */
export type TensorFlowBackend = 'tensorflow' | 'wasm' | 'cpu';

export interface TensorFlowRuntime {
  backend: TensorFlowBackend;
  /** The faster backends that were tried and why each could not be used, to log once. */
  unavailable: { backend: TensorFlowBackend; reason: string }[];
}

// The package name in a variable, so that neither TypeScript nor a bundler insists on an
// optional dependency that may be absent.
const NATIVE_PACKAGE = '@tensorflow/tfjs-node';

let runtime: Promise<TensorFlowRuntime> | undefined;

/** Idempotent: the first call picks the backend, every call resolves to that choice. */
export function initTensorFlow(): Promise<TensorFlowRuntime> {
  runtime ??= chooseBackend();
  return runtime;
}

async function chooseBackend(): Promise<TensorFlowRuntime> {
  // Silences TF.js's console advice (e.g. "install tfjs-node"); this function reports instead.
  tf.enableProdMode();
  const unavailable: TensorFlowRuntime['unavailable'] = [];

  try {
    // Registers the 'tensorflow' backend as a side effect, on the same tfjs-core as ours as
    // long as both are at the same version (package.json pins them together).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(NATIVE_PACKAGE);
    if (await tf.setBackend('tensorflow')) return { backend: 'tensorflow', unavailable };
    unavailable.push({ backend: 'tensorflow', reason: 'the native backend failed to start' });
  } catch (error) {
    unavailable.push({ backend: 'tensorflow', reason: firstLine(error) });
  }

  try {
    // The directory of the installed .wasm files, with the trailing separator TF.js expects.
    const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep;
    setWasmPaths(wasmDir);
    if (await tf.setBackend('wasm')) return { backend: 'wasm', unavailable };
    unavailable.push({ backend: 'wasm', reason: 'the WebAssembly backend failed to start' });
  } catch (error) {
    unavailable.push({ backend: 'wasm', reason: firstLine(error) });
  }

  if (!(await tf.setBackend('cpu'))) throw new Error('TensorFlow.js has no usable backend');
  return { backend: 'cpu', unavailable };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0].trim();
}

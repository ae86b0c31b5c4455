// WebAssembly SIMD for the federated maths: pure functions over typed arrays, no Nest.
export { simdAvailable } from './kernels';
export { SimdSums } from './simd-sums';
export { simdDeltaNorm } from './squared-distance';

// Shared by run_tfjs.js and ../default_weights/movenet.js: a TensorFlow.js backend, and a graph
// model read from its model.json and weight shards on disk (no fetch, no network).
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const path = require('path');

async function useBackend(name) {
  if (name === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
  }
  await tf.setBackend(name); await tf.ready();
}

async function loadGraph(modelJson) {
  const mj = JSON.parse(fs.readFileSync(modelJson));
  const dir = path.dirname(modelJson);
  const specs = [], bufs = [];
  for (const g of mj.weightsManifest) { specs.push(...g.weights); for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p))); }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadGraphModel({ load: async () => ({ modelTopology: mj.modelTopology, weightSpecs: specs, weightData, format: mj.format, generatedBy: mj.generatedBy, convertedBy: mj.convertedBy, signature: mj.signature, userDefinedMetadata: mj.userDefinedMetadata }) });
}

module.exports = { tf, useBackend, loadGraph };

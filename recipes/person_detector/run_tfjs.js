// Run a TensorFlow.js graph model on raw input tensors (used by convert.py check).
// usage: node run_tfjs.js model.json jobs.json ; jobs: [{in, dtype: float32|int32, shape, out}]
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const path = require('path');
async function main() {
  const backend = process.env.TFJS_BACKEND || 'cpu';
  if (backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
  }
  await tf.setBackend(backend); await tf.ready();
  const [modelJson, jobsFile] = process.argv.slice(2);
  const mj = JSON.parse(fs.readFileSync(modelJson));
  const dir = path.dirname(modelJson);
  const specs = [], bufs = [];
  for (const g of mj.weightsManifest) { specs.push(...g.weights); for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p))); }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = { load: async () => ({ modelTopology: mj.modelTopology, weightSpecs: specs, weightData, format: mj.format, generatedBy: mj.generatedBy, convertedBy: mj.convertedBy, signature: mj.signature, userDefinedMetadata: mj.userDefinedMetadata }) };
  const model = await tf.loadGraphModel(handler);
  const outNames = model.outputs.map(o => o.name);
  const jobs = JSON.parse(fs.readFileSync(jobsFile));
  for (const j of jobs) {
    const raw = fs.readFileSync(j.in);
    const arr = j.dtype === 'int32' ? new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4) : new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const x = tf.tensor(arr, j.shape, j.dtype);
    let outs = model.execute(x);
    if (!Array.isArray(outs)) outs = [outs];
    const meta = [];
    for (let i = 0; i < outs.length; i++) {
      const d = await outs[i].data();
      fs.writeFileSync(`${j.out}_${i}.bin`, Buffer.from(new Float32Array(d).buffer));
      meta.push({ name: outNames[i], shape: outs[i].shape });
    }
    fs.writeFileSync(`${j.out}.json`, JSON.stringify(meta));
    tf.dispose([x, ...outs]);
  }
}
main().catch(e => { console.error(e); process.exit(1); });

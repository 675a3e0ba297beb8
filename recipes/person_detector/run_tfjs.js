// Run a TensorFlow.js graph model on raw input tensors (used by convert.py check).
// usage: node run_tfjs.js model.json jobs.json ; jobs: [{in, dtype: float32|int32, shape, out}]
const fs = require('fs');
const { tf, useBackend, loadGraph } = require('./tfjs_graph');
async function main() {
  await useBackend(process.env.TFJS_BACKEND || 'cpu');
  const [modelJson, jobsFile] = process.argv.slice(2);
  const model = await loadGraph(modelJson);
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

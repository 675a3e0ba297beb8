// Run MoveNet SinglePose (a TensorFlow.js graph model) on square uint8 crops, under node.
// usage: node movenet.js model.json crops.bin N size out.bin
//   crops.bin: N x size x size x 3 uint8 (RGB); out.bin: N x 17 x 3 float32 (y, x, score; y and x in
//   [0, 1] of the crop). TensorFlow.js and its WebAssembly backend come from NODE_PATH.
const fs = require('fs');
const { tf, useBackend, loadGraph } = require('../person_detector/tfjs_graph');

async function main() {
  const [modelJson, inFile, nStr, sizeStr, outFile] = process.argv.slice(2);
  if (!outFile) throw new Error('usage: node movenet.js model.json crops.bin N size out.bin');
  await useBackend('wasm');
  const model = await loadGraph(modelJson);
  const n = parseInt(nStr), size = parseInt(sizeStr), per = size * size * 3;
  const raw = fs.readFileSync(inFile);
  if (raw.length !== n * per) throw new Error(`${inFile}: ${raw.length} bytes, expected ${n} crops of ${size}x${size}x3`);
  const out = new Float32Array(n * 51);
  for (let i = 0; i < n; i++) {
    const x = tf.tensor(Int32Array.from(raw.subarray(i * per, (i + 1) * per)), [1, size, size, 3], 'int32');
    const y = model.execute(x);
    const d = await y.data();
    if (d.length !== 51) throw new Error(`${modelJson}: output of ${d.length} values, expected 1 x 1 x 17 x 3`);
    out.set(d, i * 51);
    tf.dispose([x, y]);
  }
  fs.writeFileSync(outFile, Buffer.from(out.buffer));
}
main().catch(e => { console.error(e.message || e); process.exit(1); });

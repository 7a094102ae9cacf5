// onnx_write_ort.js - ONNX Runtime (npm onnxruntime-node, CPU) on a file onx_write wrote, for onnx_write_ort.sh:
//   node tests/cli/onnx_write_ort.js MODEL INPUTS_JSON MEAN STD
// INPUTS_JSON: rows of 1x28x28 pixel values 0..255; each is scaled (x/255 - MEAN) / STD as the model's
// `image` metadata says, run, and L2-normalised. Prints the embeddings as a JSON array of arrays.
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputs, mean, std] = process.argv.slice(2);
  const rows = JSON.parse(fs.readFileSync(inputs, 'utf8')), per = rows[0].length;
  const x = new Float32Array(rows.length * per);
  rows.forEach((r, i) => r.forEach((v, j) => { x[i * per + j] = (v / 255 - Number(mean)) / Number(std); }));
  const s = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, interOpNumThreads: 1});
  if (s.inputNames[0] !== 'input' || s.outputNames[0] !== 'embedding')
    throw new Error('names: ' + s.inputNames + ' -> ' + s.outputNames);
  const out = (await s.run({input: new ort.Tensor('float32', x, [rows.length, 1, 28, 28])})).embedding;
  const d = out.dims[1], res = [];
  for (let i = 0; i < rows.length; i++) {
    const v = Array.from(out.data.slice(i * d, (i + 1) * d));
    const n = Math.max(Math.sqrt(v.reduce((a, b) => a + b * b, 0)), 1e-12);
    res.push(v.map(e => e / n));
  }
  console.log(JSON.stringify(res));
}
main().catch(e => { console.error('onnx_write_ort: ' + e.message); process.exit(1); });

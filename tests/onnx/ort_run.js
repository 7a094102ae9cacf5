// ort_run.js - ONNX Runtime (npm onnxruntime-node, CPU, one thread) on every case folder of DIR:
//   node tests/onnx/ort_run.js DIR
// reads <case>/model.onnx, input.bin (float32) and input.json (its shape), writes output.bin and
// output.json (the first output's values and shape), or error.txt when ONNX Runtime refuses the case.
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const dir = process.argv[2];
  let ran = 0, refused = 0;
  for (const c of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, c);
    if (!fs.existsSync(path.join(p, 'model.onnx'))) continue;
    try {
      const s = await ort.InferenceSession.create(path.join(p, 'model.onnx'), {intraOpNumThreads: 1, interOpNumThreads: 1});
      const shape = JSON.parse(fs.readFileSync(path.join(p, 'input.json'), 'utf8'));
      const buf = fs.readFileSync(path.join(p, 'input.bin'));
      const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      const out = await s.run({[s.inputNames[0]]: new ort.Tensor('float32', x, shape)});
      const y = out[s.outputNames[0]];
      if (y.type !== 'float32') throw new Error('output type ' + y.type);
      fs.writeFileSync(path.join(p, 'output.bin'), Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
      fs.writeFileSync(path.join(p, 'output.json'), JSON.stringify(y.dims));
      ran++;
    } catch (e) {
      fs.writeFileSync(path.join(p, 'error.txt'), String(e.message) + '\n');
      refused++;
    }
  }
  console.log(`${ran} cases run by ONNX Runtime, ${refused} refused by it`);
}
main().catch(e => { console.error('ort_run: ' + e.message); process.exit(1); });

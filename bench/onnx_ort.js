// onnx_ort.js - the ONNX Runtime side of bench_onnx.sh (npm onnxruntime-node, CPU, one thread).
//   node bench/onnx_ort.js MODEL C,H,W MIN_SECONDS REPS BATCH...
// prints "BATCH IMAGES_PER_S" per batch: best of REPS runs of at least MIN_SECONDS.
const ort = require('onnxruntime-node');

async function main() {
  const [model, shape, minS, reps, ...batches] = process.argv.slice(2);
  const dims = shape.split(',').map(Number), per = dims.reduce((a, b) => a * b, 1);
  const s = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, interOpNumThreads: 1});
  for (const b of batches.map(Number)) {
    const x = new Float32Array(b * per).map(() => Math.random());
    const feeds = {[s.inputNames[0]]: new ort.Tensor('float32', x, [b, ...dims])};
    await s.run(feeds);
    let best = 0;
    for (let r = 0; r < Number(reps); r++) {
      const t0 = process.hrtime.bigint();
      let calls = 0, t = 0;
      do {
        await s.run(feeds);
        calls++;
        t = Number(process.hrtime.bigint() - t0) / 1e9;
      } while (t < Number(minS));
      best = Math.max(best, calls * b / t);
    }
    console.log(b, best.toFixed(1));
  }
}
main().catch(e => { console.error('onnx_ort: ' + e.message); process.exit(1); });

// onnx_ort.js - the ONNX Runtime side of bench_onnx.sh (npm onnxruntime-node, CPU, one thread).
//   node bench/onnx_ort.js MODEL C,H,W MIN_SECONDS REPS BATCH...
// prints "BATCH IMAGES_PER_S IMAGES_PER_CPU_S" per batch: best of REPS runs of at least MIN_SECONDS
// (per second of wall time, per second of the process's CPU time: user + system, all threads).
const ort = require('onnxruntime-node');

async function main() {
  const [model, shape, minS, reps, ...batches] = process.argv.slice(2);
  const dims = shape.split(',').map(Number), per = dims.reduce((a, b) => a * b, 1);
  const s = await ort.InferenceSession.create(model, {intraOpNumThreads: 1, interOpNumThreads: 1});
  for (const b of batches.map(Number)) {
    const x = new Float32Array(b * per).map(() => Math.random());
    const feeds = {[s.inputNames[0]]: new ort.Tensor('float32', x, [b, ...dims])};
    await s.run(feeds);
    let best = 0, bestCpu = 0;
    for (let r = 0; r < Number(reps); r++) {
      const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
      let calls = 0, t = 0;
      do {
        await s.run(feeds);
        calls++;
        t = Number(process.hrtime.bigint() - t0) / 1e9;
      } while (t < Number(minS));
      const cu = process.cpuUsage(c0), c = (cu.user + cu.system) / 1e6;
      best = Math.max(best, calls * b / t);
      bestCpu = Math.max(bestCpu, calls * b / c);
    }
    console.log(b, best.toFixed(1), bestCpu.toFixed(1));
  }
}
main().catch(e => { console.error('onnx_ort: ' + e.message); process.exit(1); });

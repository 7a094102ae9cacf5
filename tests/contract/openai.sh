#!/usr/bin/env bash
# tests/contract/openai.sh - the official `openai` npm client against
# POST /v1/embeddings: its default (base64, decoded by the client), float,
# and text input (a clear 422); vectors equal /v1/embed's. The client is
# installed into a cache under build/; the suite is a SKIP when npm cannot
# install it (a failure under REQUIRE_ALL=1).
. "$(dirname "$0")/../lib.sh"
npm_cache openai || skip "the openai npm client is not available (no node/npm, or offline): $(grep -m1 -i 'error' "$tmp/npm.log" 2>/dev/null)"
start_server

cat >"$tmp/client.js" <<'JS'
const OpenAI = require(process.argv[2] + '/node_modules/openai');
const [url, key] = [process.argv[3], process.argv[4]];
const client = new OpenAI({apiKey: key, baseURL: url + '/v1', maxRetries: 0});
const inputs = [0, 1, 2].map(r => Array.from({length: 784}, (_, j) => (r * 37 + j * 11) % 256));
let fails = 0;
const check = (cond, what) => { console.log((cond ? 'ok   ' : 'FAIL ') + what); if (!cond) fails++; };
(async () => {
    const ref = await (await fetch(url + '/v1/embed', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'Authorization': 'Bearer ' + key},
        body: JSON.stringify({inputs})})).json();
    const maxdiff = (data) => Math.max(...data.map((d, i) => Math.max(...d.embedding.map((x, j) => Math.abs(x - ref.embeddings[i][j])))));
    for (const fmt of [undefined, 'float', 'base64']) {
        const req = {model: 'e2e-test', input: inputs};
        if (fmt) req.encoding_format = fmt;
        const r = await client.embeddings.create(req);
        const name = 'encoding_format ' + (fmt || '(client default)');
        check(r.object === 'list' && r.data.length === 3 && r.data.every((d, i) => d.object === 'embedding' && d.index === i), name + ': list of 3 embeddings');
        if (fmt === 'base64') {  // the client returns the string as sent
            const dec = r.data.map(d => { const b = Buffer.from(d.embedding, 'base64');
                return {embedding: Array.from({length: b.length / 4}, (_, j) => b.readFloatLE(4 * j))}; });
            // the float reply has 9 significant digits: the same float32 values
            check(dec.every((d, i) => d.embedding.length === 32 && d.embedding.every((x, j) => x === Math.fround(ref.embeddings[i][j]))),
                  name + ': decoded little-endian float32 bit-equal to /v1/embed');
        } else {
            check(r.data.every(d => Array.isArray(d.embedding) && d.embedding.length === 32), name + ': 32 numbers each');
            check(maxdiff(r.data) <= 1e-6, name + ': equal /v1/embed (max diff ' + maxdiff(r.data) + ')');
        }
        check(r.usage && r.usage.prompt_tokens === 0 && r.usage.total_tokens === 0 && r.model === 'e2e-test', name + ': usage and model');
    }
    const one = await client.embeddings.create({model: 'e2e-test', input: inputs[0], encoding_format: 'float', user: 'u-1', dimensions: 32});
    check(one.data.length === 1 && Math.max(...one.data[0].embedding.map((x, j) => Math.abs(x - ref.embeddings[0][j]))) <= 1e-6,
          'a single vector is a batch of one; user and dimensions (= 32) accepted');
    for (const [input, extra, what] of [['a photo of a cat', {}, 'text input'], [['two', 'strings'], {}, 'a list of strings'],
                                        [inputs[0], {dimensions: 8}, 'dimensions other than the model\'s']]) {
        try {
            await client.embeddings.create({model: 'e2e-test', input, ...extra});
            check(false, what + ': refused');
        } catch (e) {
            const m = e.error && e.error.message || '';
            check(e.status === 422 && e.error.type === 'invalid_input' && m.length > 0, what + ': 422 invalid_input: ' + m);
            if (what !== 'dimensions other than the model\'s') check(/text input is not supported/.test(m), what + ': the message says text is not supported');
        }
    }
    try { await new OpenAI({apiKey: 'wrong', baseURL: url + '/v1', maxRetries: 0}).embeddings.create({model: 'm', input: inputs}); check(false, 'wrong key refused'); }
    catch (e) { check(e.status === 401, 'wrong key: 401 (' + e.constructor.name + ')'); }
    process.exit(fails ? 1 : 0);
})().catch(e => { console.log('FAIL ' + (e.stack || e)); process.exit(1); });
JS
rc=0
node "$tmp/client.js" "$NPM_DIR" "$url" "$KEY" >"$tmp/client.log" 2>&1 || rc=$?
# the client's own ok/FAIL lines count as this suite's checks
while IFS= read -r line; do
    case $line in
    "ok   "*) ok "${line#ok   }" ;;
    "FAIL "*) bad "${line#FAIL }" ;;
    *) echo "$line" ;;
    esac
done <"$tmp/client.log"
((rc == 0)) || bad "the openai client script exited $rc"
finish

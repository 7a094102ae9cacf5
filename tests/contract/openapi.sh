#!/usr/bin/env bash
# tests/contract/openapi.sh - /openapi.json is a valid OpenAPI 3 document
# (@apidevtools/swagger-parser from npm, cached under build/) and every reply
# of a real tripletd (with a gallery built by `tripletctl index`) matches the
# schema it documents (check_openapi.py, python3-jsonschema), for the MLP and
# for an ONNX graph.
. "$(dirname "$0")/../lib.sh"

# a 40-row CSV gallery of the e2e model's 784-d inputs, labels 0..3
awk 'BEGIN { for (i = 0; i < 40; i++) { s = ""; for (j = 0; j < 784; j++) s = s ((i * 31 + j * 7) % 256) ","; print s (i % 4) } }' \
    >"$tmp/g.csv"
if ! "$TRIPLETCTL" index --model "$MODEL" --data "$tmp/g.csv" --out "$tmp/g.safetensors" --quiet >"$tmp/index.log" 2>&1; then
    echo "FAIL tripletctl index"; cat "$tmp/index.log"; exit 1
fi
start_server --gallery "$tmp/g.safetensors"
ran=0

if pick_python jsonschema; then
    ran=1
    if "$PY" "$(dirname "$0")/check_openapi.py" "$port" "$KEY" >"$tmp/check.log" 2>&1; then
        ok "replies match the documented schemas ($(tail -1 "$tmp/check.log"))"
    else
        bad "replies vs /openapi.json:"; grep -v '^ok' "$tmp/check.log"
    fi
    # the same for an ONNX graph with image metadata (GET /v1/model has the ONNX members)
    MODEL=$ROOT/tests/data/onnx/fashion_image.onnx start_server
    if "$PY" "$(dirname "$0")/check_openapi.py" "$port" "$KEY" >"$tmp/check.log" 2>&1; then
        ok "replies of an ONNX model match the documented schemas ($(tail -1 "$tmp/check.log"))"
    else
        bad "replies of an ONNX model vs /openapi.json:"; grep -v '^ok' "$tmp/check.log"
    fi
else
    skip_part "reply schemas: python3-jsonschema is not installed"
fi

if npm_cache @apidevtools/swagger-parser; then
    ran=1
    curl -sf -H "Authorization: Bearer $KEY" "$url/openapi.json" >"$tmp/openapi.json" || bad "GET /openapi.json"
    cat >"$tmp/validate.js" <<'JS'
const SwaggerParser = require(process.argv[2] + '/node_modules/@apidevtools/swagger-parser');
SwaggerParser.validate(process.argv[3])
    .then(api => { console.log('valid OpenAPI ' + api.openapi + ', ' + Object.keys(api.paths).length + ' paths'); })
    .catch(e => { console.log(e.message); process.exit(1); });
JS
    if out=$(node "$tmp/validate.js" "$NPM_DIR" "$tmp/openapi.json" 2>&1); then ok "/openapi.json: $out"
    else bad "/openapi.json is not a valid OpenAPI document: $out"; fi
else
    skip_part "OpenAPI document validation: no node, or npm install @apidevtools/swagger-parser failed: $(grep -m1 -i error "$tmp/npm.log" 2>/dev/null)"
fi
((ran)) || skip "neither python3-jsonschema nor npm is available"
finish
